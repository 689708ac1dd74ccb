"""Statistics over seeds: means, IQM, stratified bootstrap intervals, effects, verdicts.

The unit of every interval is the seed (one training run): per-episode rows are
averaged per seed first, then seeds are resampled with replacement. With
strata (e.g. tasks), seeds are resampled within each stratum, so every
resample keeps the same number of seeds per task.

Index draws follow ``scipy.stats.bootstrap`` (one ``rng.integers(0, n, (B, n))``
per sample, in order) and intervals are its percentile intervals, so
the results equal scipy's for the same generator; tests check this.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

N_RESAMPLES = 2000
CONFIDENCE = 0.95
MIN_SEEDS = 5
"""The seed bar of the decision rule (config: min_seeds): fewer per side and no verdict is given."""
IQM_MIN_SEEDS = 4

Statistic = Callable[..., np.ndarray]
Side = Literal["greater", "less"]


def mean(x, axis: int = -1):
    return np.mean(x, axis=axis)


def iqm(x, axis: int = -1):
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    return _st.trim_mean(x, 0.25, axis=axis)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval and the seeds behind it."""

    estimate: float
    low: float
    high: float
    n_a: int
    n_b: int | None = None
    paired: bool | None = None


def _percentile_interval(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(dist, [alpha, 1 - alpha], axis=-1)
    return float(lo), float(hi)


def _resample(rng: np.random.Generator, groups: Sequence[np.ndarray], n_resamples: int) -> list[np.ndarray]:
    return [g[rng.integers(0, len(g), (n_resamples, len(g)))] for g in groups]


def _as_array(x) -> np.ndarray:
    return np.asarray(x, dtype=float).ravel()


def bootstrap_ci(
    values,
    statistic: Statistic = mean,
    strata=None,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """Statistic of ``values`` (one per seed) with a stratified percentile bootstrap interval.

    ``strata``: one label per value; seeds are resampled within each label and
    the statistic is taken over all resampled values together.
    """
    values = _as_array(values)
    if len(values) == 0:
        return Estimate(np.nan, np.nan, np.nan, 0)
    if strata is None:
        groups = [values]
    else:
        labels = np.asarray(strata)
        if len(labels) != len(values):
            raise ValueError(f"strata has {len(labels)} labels for {len(values)} values")
        groups = [values[labels == s] for s in pd.unique(labels)]
    point = float(statistic(np.concatenate(groups)))
    rng = np.random.default_rng(seed)
    dist = statistic(np.concatenate(_resample(rng, groups, n_resamples), axis=-1), axis=-1)
    lo, hi = _percentile_interval(dist, confidence)
    return Estimate(point, lo, hi, len(values))


def difference(
    a,
    b,
    paired: bool = False,
    statistic: Statistic = mean,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """statistic(a) - statistic(b) with a bootstrap interval.

    Paired: ``a[i]`` and ``b[i]`` come from the same seed and pairs are
    resampled together (interval of the statistic of ``a - b``); unpaired: the
    two samples are resampled independently.
    """
    a, b = _as_array(a), _as_array(b)
    if len(a) == 0 or len(b) == 0:
        return Estimate(np.nan, np.nan, np.nan, len(a), len(b), paired)
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired difference needs equal lengths, got {len(a)} and {len(b)}")
        est = bootstrap_ci(a - b, statistic, n_resamples=n_resamples, confidence=confidence, seed=seed)
        return Estimate(est.estimate, est.low, est.high, len(a), len(b), True)
    rng = np.random.default_rng(seed)
    ra, rb = _resample(rng, [a, b], n_resamples)
    dist = statistic(ra, axis=-1) - statistic(rb, axis=-1)
    lo, hi = _percentile_interval(dist, confidence)
    return Estimate(float(statistic(a) - statistic(b)), lo, hi, len(a), len(b), False)


def _prob_improvement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(A > B) + 0.5 P(A = B) over all pairs, on the last axis (batched)."""
    diff = a[..., :, None] - b[..., None, :]
    return np.mean((diff > 0) + 0.5 * (diff == 0), axis=(-2, -1))


def probability_of_improvement(
    a, b, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> Estimate:
    """P(X > Y) + 0.5 P(X = Y) for X a seed of ``a``, Y a seed of ``b``, with a bootstrap interval."""
    a, b = _as_array(a), _as_array(b)
    if len(a) == 0 or len(b) == 0:
        return Estimate(np.nan, np.nan, np.nan, len(a), len(b), False)
    rng = np.random.default_rng(seed)
    ra, rb = _resample(rng, [a, b], n_resamples)
    lo, hi = _percentile_interval(_prob_improvement(ra, rb), confidence)
    return Estimate(float(_prob_improvement(a, b)), lo, hi, len(a), len(b), False)


def decide(est: Estimate, side: Side, null: float = 0.0, min_seeds: int = MIN_SEEDS) -> tuple[str, str]:
    """Verdict of the decision rule and a one-line explanation.

    With fewer than ``min_seeds`` seeds on a side the verdict is "too few seeds (n <
    min_seeds)", whatever the interval. Otherwise the interval entirely on the claimed
    ``side`` of ``null`` supports the claim, entirely on the other side contradicts it;
    anything else, or no finite interval, is inconclusive.
    """
    if side not in ("greater", "less"):
        raise ValueError(f"side must be 'greater' or 'less', got {side!r}")
    counts = [n for n in (est.n_a, est.n_b) if n is not None]
    if min(counts) < min_seeds:
        return f"too few seeds (n < {min_seeds})", f"{' vs '.join(map(str, counts))} seeds"
    if not (np.isfinite(est.low) and np.isfinite(est.high)):
        return "inconclusive", "no finite bootstrap interval"
    above, below = est.low > null, est.high < null
    claimed, other = (above, below) if side == "greater" else (below, above)
    word = ">" if side == "greater" else "<"
    if claimed:
        return "supported", f"95% interval entirely {word} {null:g}"
    if other:
        return "contradicted", f"95% interval entirely on the other side of {null:g}"
    return "inconclusive", f"95% interval contains {null:g}"


def per_seed(df: pd.DataFrame, by: Sequence[str], value: str, unit: str = "seed") -> pd.DataFrame:
    """Mean of ``value`` per (``by``, ``unit``), rows with a non-finite value dropped."""
    keep = df[np.isfinite(df[value].astype(float))]
    return keep.groupby([*by, unit], sort=False, dropna=False)[value].mean().reset_index()


def summarize(
    df: pd.DataFrame,
    by: Sequence[str],
    value: str,
    unit: str = "seed",
    strata: str | None = None,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> pd.DataFrame:
    """Per group of ``by``: seeds, mean and IQM with 95% (stratified) bootstrap intervals.

    Rows are averaged per ``unit`` (seed, plus ``strata`` if given) first. The
    IQM is left NaN for groups with fewer than IQM_MIN_SEEDS seeds, where it
    would be a trimmed mean of one or two values.
    """
    by = list(by)
    units = per_seed(df, by + ([strata] if strata else []), value, unit)
    rows = []
    for key, g in units.groupby(by, sort=False, dropna=False):
        labels = g[strata].to_numpy() if strata else None
        m = bootstrap_ci(g[value], mean, labels, n_resamples, confidence, seed)
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row.update(n_seeds=len(g), mean=m.estimate, ci_low=m.low, ci_high=m.high)
        if len(g) >= IQM_MIN_SEEDS:
            q = bootstrap_ci(g[value], iqm, labels, n_resamples, confidence, seed)
            row.update(iqm=q.estimate, iqm_low=q.low, iqm_high=q.high)
        else:
            row.update(iqm=np.nan, iqm_low=np.nan, iqm_high=np.nan)
        rows.append(row)
    cols = [*by, "n_seeds", "mean", "ci_low", "ci_high", "iqm", "iqm_low", "iqm_high"]
    return pd.DataFrame(rows, columns=cols)


def bootstrap_curve(
    matrix, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (rows) per column with percentile bootstrap intervals.

    NaN cells (a seed without a value at that point) are ignored. Returns
    (mean, low, high, n_seeds) per column; columns with fewer than two seeds
    get no interval (NaN).
    """
    m = np.asarray(matrix, dtype=float)
    n = np.sum(np.isfinite(m), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = np.nansum(m, axis=0) / np.where(n > 0, n, np.nan)
        idx = np.random.default_rng(seed).integers(0, m.shape[0], (n_resamples, m.shape[0]))
        sample = m[idx]  # (B, seeds, points)
        counts = np.sum(np.isfinite(sample), axis=1)
        dist = np.nansum(sample, axis=1) / np.where(counts > 0, counts, np.nan)
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no seed reached that point
        lo, hi = np.nanquantile(dist, [alpha, 1 - alpha], axis=0)
    lo = np.where(n >= 2, lo, np.nan)
    hi = np.where(n >= 2, hi, np.nan)
    return point, lo, hi, n
