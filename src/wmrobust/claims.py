"""Claims C1-C4 of docs/protocol.md section 1, computed from the aggregated tables.

Every effect is a difference ``a - b`` between two variants of one task, taken
over seeds: per-seed values first (mean over episodes / conditions), then the
mean difference with a 95% bootstrap interval, paired by seed when both sides
have exactly the same seeds and unpaired otherwise. Diverged runs are left
out of return, frame and error statistics and counted in the divergence rate.
The verdict is ``stats.decide`` on the interval; a comparison whose table or
variant is missing gives a "not run" row naming what is missing; a comparison of a
variant that the grid does not run at all (the ``runs`` table) is not listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from wmrobust import stats

# The zero-drift level the paper's captions use per domain (docs/protocol.md section 3).
PAPER_ZERO_DRIFT = {"walker": "zd5", "quadruped": "zd01"}
ZERO_DRIFT_VARIANTS = ("zd01", "zd1", "zd5")
ROLLOUT_HORIZON = 50

COLUMNS = [
    "claim", "task", "statistic", "comparison", "primary", "claimed_side",
    "effect", "ci_low", "ci_high", "n_seeds_a", "n_seeds_b", "paired", "iqm_a", "iqm_b",
    "p_claimed", "p_claimed_low", "p_claimed_high", "scale", "verdict", "note",
]  # fmt: skip

STATEMENTS = {
    "C1": "Modest zero-drift latent error acts as implicit regularization and improves robustness.",
    "C2": "Non-zero-drift latent error biases and destabilizes learning.",
    "C3": "Jacobian regularization mitigates non-zero drift: stabler, faster, more robust.",
    "C4": "Jacobian regularization improves long-horizon prediction.",
}


class Missing(Exception):
    """A comparison cannot be computed: its table or one of its variants is absent."""


@dataclass(frozen=True)
class Comparison:
    claim: str
    statistic: str
    a: str
    b: str
    side: Literal["greater", "less"]
    primary: bool


def domain(task: str) -> str:
    """'walker_walk' / 'walker-walk' -> 'walker'."""
    return re.split(r"[-_]", str(task))[0]


def _rows(table: pd.DataFrame | None, name: str, task: str, variant: str) -> pd.DataFrame:
    if table is None:
        raise Missing(f"no {name} table among the inputs")
    rows = table[(table["task"] == task) & (table["variant"] == variant)]
    if rows.empty:
        raise Missing(f"variant {variant} has no rows for task {task} in the {name} table")
    return rows


def _finished(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    ok = np.isfinite(rows[value].astype(float))
    if "status" in rows:
        ok &= rows["status"].fillna("finished") != "diverged"
    return rows[ok]


def diverged_seeds(rows: pd.DataFrame) -> int:
    if "status" not in rows:
        return 0
    return int(rows.loc[rows["status"] == "diverged", "seed"].nunique())


def clean_return(eval_df, task, variant) -> tuple[pd.Series, str]:
    """Final clean return per seed: mean over the clean condition's episodes."""
    rows = _rows(eval_df, "eval", task, variant)
    clean = rows[rows["family"] == "clean"]
    if clean.empty:
        raise Missing(f"variant {variant} has no clean evaluation rows for task {task}")
    return _finished(clean, "return").groupby("seed")["return"].mean(), _excluded_note(rows, variant)


def _excluded_note(rows: pd.DataFrame, variant: str) -> str:
    k = diverged_seeds(rows)
    return f"{k} diverged run(s) of {variant} excluded" if k else ""


def perturbed_conditions(rows: pd.DataFrame) -> set[str]:
    key = "condition" if "condition" in rows else "family"
    return set(rows.loc[rows["family"] != "clean", key].astype(str))


def perturbed_return(eval_df, task, variant, conditions: set[str]) -> tuple[pd.Series, str]:
    """Per seed: mean over ``conditions`` of the mean return over each condition's episodes."""
    rows = _rows(eval_df, "eval", task, variant)
    key = "condition" if "condition" in rows else "family"
    rows_c = _finished(rows[rows[key].astype(str).isin(conditions)], "return")
    per_cond = rows_c.groupby(["seed", key])["return"].mean().reset_index()
    # A seed must cover every condition, or its average would mix different condition sets.
    full = per_cond.groupby("seed")[key].nunique() == len(conditions)
    per_cond = per_cond[per_cond["seed"].isin(full[full].index)]
    return per_cond.groupby("seed")["return"].mean(), _excluded_note(rows, variant)


def frames_to_threshold(curves, task, variant, threshold: float) -> tuple[pd.Series, str]:
    """Per seed: the first eval point (env frames) with return >= ``threshold``.

    A run that never reaches it counts at its last eval point (right-censored,
    which favours neither side more than its budget allows); the note says how many.
    """
    rows = _rows(curves, "curves", task, variant)
    ev = _finished(rows[rows["split"] == "eval"], "return").sort_values("frames")
    out, censored = {}, 0
    for s, g in ev.groupby("seed"):
        hit = g.loc[g["return"] >= threshold, "frames"]
        if hit.empty:
            censored += 1
            out[s] = float(g["frames"].max())
        else:
            out[s] = float(hit.iloc[0])
    notes = [_excluded_note(rows, variant)]
    if censored:
        notes.append(f"{censored} run(s) of {variant} never reached it (counted at their last eval point)")
    return pd.Series(out, dtype=float), "; ".join(n for n in notes if n)


def rollout_error(rollout, task, variant, horizon: int) -> tuple[pd.Series, str]:
    """Per seed: open-loop observation MSE at ``horizon`` (mean over episodes / rows)."""
    rows = _rows(rollout, "rollout", task, variant)
    ok = _finished(rows, "obs_mse")
    return ok[ok["horizon"] == horizon].groupby("seed")["obs_mse"].mean(), _excluded_note(rows, variant)


def rollout_slope(rollout, task, variant) -> tuple[pd.Series, str]:
    """Per seed: least-squares slope of log(observation MSE) against horizon."""
    rows = _rows(rollout, "rollout", task, variant)
    ok = _finished(rows, "obs_mse")
    ok = ok[ok["obs_mse"] > 0]
    out = {}
    for s, g in ok.groupby("seed"):
        curve = g.groupby("horizon")["obs_mse"].mean()
        if len(curve) >= 2:
            out[s] = float(np.polyfit(curve.index.to_numpy(float), np.log(curve.to_numpy()), 1)[0])
    return pd.Series(out, dtype=float), _excluded_note(rows, variant)


def divergence(tables: dict[str, pd.DataFrame | None], task, variant) -> tuple[pd.Series, str]:
    """Per seed: 1.0 if the run diverged, else 0.0 (runs table first, else any table's status)."""
    for name in ("runs", "curves", "eval", "rollout"):
        table = tables.get(name)
        if table is None or "status" not in table:
            continue
        rows = table[(table["task"] == task) & (table["variant"] == variant)]
        if not rows.empty:
            flag = rows.groupby("seed")["status"].agg(lambda s: float((s == "diverged").any()))
            return flag, f"status from the {name} table"
    raise Missing(f"variant {variant} has no run status for task {task} in any table")


def _row(cmp: Comparison, task: str, scale: str, **values) -> dict:
    base = dict.fromkeys(COLUMNS, np.nan)
    base.update(
        claim=cmp.claim, task=task, statistic=cmp.statistic, comparison=f"{cmp.a} - {cmp.b}",
        primary=cmp.primary, claimed_side=">" if cmp.side == "greater" else "<", scale=scale,
    )  # fmt: skip
    base.update(values)
    return base


def compare(
    cmp: Comparison,
    task: str,
    a: pd.Series,
    b: pd.Series,
    scale: str,
    note: str = "",
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = 0,
    min_seeds: int = stats.MIN_SEEDS,
) -> dict:
    """One claims row: mean of ``a`` - mean of ``b`` over seeds, interval, each side's IQM over
    seeds (from IQM_MIN_SEEDS seeds), P(claimed side), verdict."""
    a, b = a.dropna(), b.dropna()
    paired = len(a) > 0 and set(a.index) == set(b.index)
    if paired:
        b = b.reindex(a.index)
    est = stats.difference(a.to_numpy(), b.to_numpy(), paired=paired, n_resamples=n_resamples, seed=seed)
    sign = 1.0 if cmp.side == "greater" else -1.0
    pi = stats.probability_of_improvement(sign * a.to_numpy(), sign * b.to_numpy(), n_resamples, seed=seed)
    verdict, why = stats.decide(est, cmp.side, min_seeds=min_seeds)
    iqm_a, iqm_b = (float(stats.iqm(x.to_numpy())) if len(x) >= stats.IQM_MIN_SEEDS else np.nan for x in (a, b))
    notes = [why] + ([] if paired or len(a) == 0 else ["unpaired: seed sets differ"]) + [note]
    return _row(
        cmp, task, scale, effect=est.estimate, ci_low=est.low, ci_high=est.high,
        n_seeds_a=len(a), n_seeds_b=len(b), paired=paired, iqm_a=iqm_a, iqm_b=iqm_b,
        p_claimed=pi.estimate, p_claimed_low=pi.low, p_claimed_high=pi.high,
        verdict=verdict, note="; ".join(n for n in notes if n),
    )  # fmt: skip


def _comparisons(task: str) -> list[Comparison]:
    zd = PAPER_ZERO_DRIFT.get(domain(task))
    out = []
    for level in ZERO_DRIFT_VARIANTS:
        out.append(Comparison("C1", "perturbed return", level, "baseline", "greater", level == zd))
    out += [
        Comparison("C2", "final clean return", "nzd", "baseline", "less", True),
        Comparison("C2", "divergence rate", "nzd", "baseline", "greater", True),
        Comparison("C3", "final clean return", "nzd_jac", "nzd", "greater", True),
        Comparison("C3", "frames to 50% of baseline final return", "nzd_jac", "nzd", "less", True),
        Comparison("C3", "perturbed return", "nzd_jac", "nzd", "greater", True),
        Comparison("C4", f"open-loop observation MSE at horizon {ROLLOUT_HORIZON}", "nzd_jac", "nzd", "less", True),
        Comparison("C4", "slope of log observation MSE vs horizon", "nzd_jac", "nzd", "less", True),
    ]
    if zd is not None:
        out += [
            Comparison("C4", f"open-loop observation MSE at horizon {ROLLOUT_HORIZON}", f"{zd}_jac", zd, "less", False),
            Comparison("C4", "slope of log observation MSE vs horizon", f"{zd}_jac", zd, "less", False),
        ]
    return out


def grid_comparisons(task: str, runs: pd.DataFrame | None) -> tuple[list[Comparison], list[Comparison]]:
    """The task's comparisons whose two variants the grid runs (``runs``: a row per run of it;
    without one, every comparison), and those it does not run, which are not listed."""
    if runs is None:
        return _comparisons(task), []
    ran = set(runs.loc[runs["task"] == task, "variant"])
    split: tuple[list[Comparison], list[Comparison]] = ([], [])
    for cmp in _comparisons(task):
        split[not {cmp.a, cmp.b} <= ran].append(cmp)
    return split


def not_in_grid(tasks: list[str], runs: pd.DataFrame | None) -> list[str]:
    """'C1 walker_walk: zd01 - baseline' for each comparison the grid cannot make."""
    return [f"{cmp.claim} {task}: {cmp.a} - {cmp.b} ({cmp.statistic})"
            for task in tasks for cmp in grid_comparisons(task, runs)[1]]


def _values(cmp: Comparison, task: str, tables: dict) -> tuple[pd.Series, pd.Series, str]:
    """Per-seed values of both sides of ``cmp`` and a note; raises Missing."""
    ev, curves, rollout = tables.get("eval"), tables.get("curves"), tables.get("rollout")
    stat = cmp.statistic
    if stat == "final clean return":
        (a, na), (b, nb) = clean_return(ev, task, cmp.a), clean_return(ev, task, cmp.b)
        return a, b, "; ".join(n for n in (na, nb) if n)
    if stat == "perturbed return":
        ra, rb = _rows(ev, "eval", task, cmp.a), _rows(ev, "eval", task, cmp.b)
        conds = perturbed_conditions(ra) & perturbed_conditions(rb)
        if not conds:
            raise Missing(f"{cmp.a} and {cmp.b} share no perturbed condition for task {task}")
        (a, na), (b, nb) = perturbed_return(ev, task, cmp.a, conds), perturbed_return(ev, task, cmp.b, conds)
        return a, b, "; ".join(n for n in (f"mean over {len(conds)} perturbed conditions", na, nb) if n)
    if stat == "divergence rate":
        (a, na), (b, _) = divergence(tables, task, cmp.a), divergence(tables, task, cmp.b)
        return a, b, f"diverged runs: {int(a.sum())}/{len(a)} vs {int(b.sum())}/{len(b)}; {na}"
    if stat.startswith("frames to 50%"):
        base, _ = _baseline_final(tables, task)
        threshold = 0.5 * float(base.mean())
        (a, na), (b, nb) = frames_to_threshold(curves, task, cmp.a, threshold), frames_to_threshold(
            curves, task, cmp.b, threshold
        )
        return a, b, "; ".join(n for n in (f"threshold {threshold:.4g} (50% of baseline)", na, nb) if n)
    if stat.startswith("open-loop observation MSE"):
        horizon = _horizon(_rows(rollout, "rollout", task, cmp.a), _rows(rollout, "rollout", task, cmp.b))
        (a, na), (b, nb) = rollout_error(rollout, task, cmp.a, horizon), rollout_error(rollout, task, cmp.b, horizon)
        note = "" if horizon == ROLLOUT_HORIZON else f"horizon {horizon} (longest available; < {ROLLOUT_HORIZON})"
        return a, b, "; ".join(n for n in (note, na, nb) if n)
    if stat.startswith("slope"):
        (a, na), (b, nb) = rollout_slope(rollout, task, cmp.a), rollout_slope(rollout, task, cmp.b)
        return a, b, "; ".join(n for n in ("natural log per step of horizon", na, nb) if n)
    raise ValueError(f"unknown statistic {stat!r}")


def _horizon(ra: pd.DataFrame, rb: pd.DataFrame) -> int:
    longest = int(min(ra["horizon"].max(), rb["horizon"].max()))
    return min(ROLLOUT_HORIZON, longest)


def _baseline_final(tables: dict, task: str) -> tuple[pd.Series, str]:
    """The baseline's final clean return per seed: eval table, else the last eval point of its curves."""
    if tables.get("eval") is not None:
        try:
            return clean_return(tables["eval"], task, "baseline")
        except Missing:
            pass
    rows = _finished(_rows(tables.get("curves"), "curves", task, "baseline"), "return")
    ev = rows[rows["split"] == "eval"].sort_values("frames")
    if ev.empty:
        raise Missing(f"baseline has no eval points for task {task}, needed for the 50% threshold")
    return ev.groupby("seed")["return"].last(), "baseline final return from its last eval point"


def compute_claims(
    eval: pd.DataFrame | None = None,  # noqa: A002 - the contract's table name
    curves: pd.DataFrame | None = None,
    rollout: pd.DataFrame | None = None,
    runs: pd.DataFrame | None = None,
    tasks: list[str] | None = None,
    scale: str = "",
    n_resamples: int = stats.N_RESAMPLES,
    seed: int = 0,
    min_seeds: int = stats.MIN_SEEDS,
) -> pd.DataFrame:
    """The claims table: one row per (claim, task, statistic, comparison)."""
    tables = {"eval": eval, "curves": curves, "rollout": rollout, "runs": runs}
    if not tasks:
        tasks = sorted({t for df in tables.values() if df is not None for t in df["task"].unique()})
    rows = []
    for task in tasks:
        if domain(task) not in PAPER_ZERO_DRIFT:
            cmp = Comparison("C1", "perturbed return", "zd?", "baseline", "greater", True)
            rows.append(_row(cmp, task, scale, verdict="not run", note=f"no paper zero-drift level for {task}"))
        for cmp in grid_comparisons(task, runs)[0]:
            try:
                a, b, note = _values(cmp, task, tables)
            except Missing as why:
                rows.append(_row(cmp, task, scale, verdict="not run", note=str(why)))
                continue
            rows.append(compare(cmp, task, a, b, scale, note, n_resamples, seed, min_seeds))
    return pd.DataFrame(rows, columns=COLUMNS)
