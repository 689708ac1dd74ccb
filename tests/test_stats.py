"""Statistics against scipy.stats.bootstrap (percentile method, same draws) and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from wmrobust import claims, stats

B = 999


def scipy_ci(data, statistic, seed, **kw):
    res = st.bootstrap(data, statistic, n_resamples=B, method="percentile", rng=np.random.default_rng(seed), **kw)
    return res.confidence_interval.low, res.confidence_interval.high


def test_iqm_on_known_arrays():
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert stats.iqm(np.array([0, 1, 2, 3, 4, 5, 6, 100])) == pytest.approx(3.5)  # outlier trimmed
    assert stats.iqm(np.array([[1, 2, 3, 4], [10, 20, 30, 40]]), axis=-1) == pytest.approx([2.5, 25])


@pytest.mark.parametrize("statistic", [stats.mean, stats.iqm])
def test_bootstrap_ci_equals_scipy_percentile(statistic):
    x = np.array([310.0, 450.0, 390.0, 505.0, 270.0, 600.0, 415.0])
    est = stats.bootstrap_ci(x, statistic, n_resamples=B, seed=7)
    assert est.estimate == pytest.approx(statistic(x))
    assert (est.low, est.high) == pytest.approx(scipy_ci((x,), statistic, 7))
    assert est.n_a == len(x)


def test_stratified_bootstrap_resamples_within_strata():
    walker, quad = np.array([800.0, 850, 700, 900]), np.array([300.0, 350, 200])
    values, strata = np.concatenate([walker, quad]), ["w"] * 4 + ["q"] * 3
    est = stats.bootstrap_ci(values, stats.mean, strata=strata, n_resamples=B, seed=3)

    def pooled_mean(a, b, axis=-1):
        return np.mean(np.concatenate([a, b], axis=axis), axis=axis)

    assert est.estimate == pytest.approx(values.mean())
    assert (est.low, est.high) == pytest.approx(scipy_ci((walker, quad), pooled_mean, 3))
    # Every resample keeps 4 walker and 3 quadruped seeds, so the interval is narrower
    # than the unstratified one on this two-cluster sample.
    flat = stats.bootstrap_ci(values, stats.mean, n_resamples=B, seed=3)
    assert est.high - est.low < flat.high - flat.low


def test_unpaired_difference_equals_scipy_two_sample():
    a, b = np.array([5.0, 7, 6, 9, 8]), np.array([4.0, 5, 3, 6])
    est = stats.difference(a, b, n_resamples=B, seed=11)
    assert est.estimate == pytest.approx(a.mean() - b.mean())
    assert not est.paired and (est.n_a, est.n_b) == (5, 4)
    assert (est.low, est.high) == pytest.approx(
        scipy_ci((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), 11)
    )


def test_paired_difference_equals_scipy_paired():
    a, b = np.array([5.0, 7, 6, 9, 8]), np.array([4.0, 6.5, 3, 8, 8.5])
    est = stats.difference(a, b, paired=True, n_resamples=B, seed=2)
    assert est.paired and est.estimate == pytest.approx((a - b).mean())
    assert (est.low, est.high) == pytest.approx(
        scipy_ci((a, b), lambda x, y, axis=-1: (x - y).mean(axis), 2, paired=True)
    )


def test_probability_of_improvement_by_hand_and_against_scipy():
    a, b = np.array([1.0, 2, 3]), np.array([2.0, 2, 0])
    # a=1: 0 + 0 + 1; a=2: .5 + .5 + 1; a=3: 1 + 1 + 1  ->  6 / 9
    est = stats.probability_of_improvement(a, b, n_resamples=B, seed=5)
    assert est.estimate == pytest.approx(6 / 9)

    def pi(x, y, axis=-1):
        d = x[..., :, None] - y[..., None, :]
        return np.mean((d > 0) + 0.5 * (d == 0), axis=(-2, -1))

    assert (est.low, est.high) == pytest.approx(scipy_ci((a, b), pi, 5))
    assert stats.probability_of_improvement(b, a).estimate == pytest.approx(1 - 6 / 9)


@pytest.mark.parametrize(
    "low, high, side, verdict",
    [
        (0.5, 2.0, "greater", "supported"),
        (-2.0, -0.5, "greater", "contradicted"),
        (-0.5, 2.0, "greater", "inconclusive"),
        (0.0, 2.0, "greater", "inconclusive"),  # touching 0 is not entirely on one side
        (-2.0, -0.5, "less", "supported"),
        (0.5, 2.0, "less", "contradicted"),
        (-1.0, 1.0, "less", "inconclusive"),
    ],
)
def test_decision_rule(low, high, side, verdict):
    est = stats.Estimate((low + high) / 2, low, high, 5, 5)
    assert stats.decide(est, side)[0] == verdict


def test_decision_rule_needs_the_seed_bar_and_an_interval():
    verdict, why = stats.decide(stats.Estimate(5.0, 4.0, 6.0, 4, 5), "greater")
    assert verdict == "too few seeds (n < 5)" and why == "4 vs 5 seeds"  # the default bar: 5
    assert stats.decide(stats.Estimate(5.0, 4.0, 6.0, 5, 5), "greater")[0] == "supported"
    assert stats.decide(stats.Estimate(5.0, 4.0, 6.0, 2, 3), "greater", min_seeds=2)[0] == "supported"
    # One seed per side: the degenerate bootstrap interval must not make a verdict.
    one = stats.difference([10.0], [1.0])
    assert one.low == one.high == 9.0 and stats.decide(one, "greater", min_seeds=2)[0] == "too few seeds (n < 2)"
    assert stats.decide(stats.Estimate(1.0, np.nan, np.nan, 5, 5), "greater")[0] == "inconclusive"
    assert stats.decide(stats.difference([], [1.0, 2.0]), "less")[0] == "too few seeds (n < 5)"
    with pytest.raises(ValueError, match="side"):
        stats.decide(stats.Estimate(1.0, 0.5, 2.0, 3, 3), "bigger")


def test_summarize_averages_episodes_per_seed_first():
    df = pd.DataFrame({
        "variant": ["a"] * 5 + ["b"] * 8,
        "seed": [0, 0, 0, 1, 2] + [0, 1, 2, 3, 0, 1, 2, 3],
        "return": [1.0, 2.0, 3.0, 10.0, 20.0] + [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, np.nan],
    })  # fmt: skip
    out = stats.summarize(df, ["variant"], "return", n_resamples=B).set_index("variant")
    assert out.loc["a", "mean"] == pytest.approx((2.0 + 10.0 + 20.0) / 3)  # not the episode mean 7.2
    assert out.loc["a", "n_seeds"] == 3 and np.isnan(out.loc["a", "iqm"])  # IQM needs >= 4 seeds
    # seed 3: 4.0 and a NaN (diverged episode) -> 4.0
    assert out.loc["b", "n_seeds"] == 4 and out.loc["b", "mean"] == pytest.approx((1 + 2 + 3 + 4) / 4)
    assert out.loc["b", "iqm"] == pytest.approx(2.5)  # mean of the middle two: 2, 3
    assert out.loc["b", "ci_low"] <= out.loc["b", "mean"] <= out.loc["b", "ci_high"]


def test_bootstrap_curve_matches_pointwise_bootstrap_and_skips_missing():
    m = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, np.nan], [3.0, 3.0, np.nan]])
    mean, lo, hi, n = stats.bootstrap_curve(m, n_resamples=B, seed=4)
    assert n.tolist() == [3, 3, 1]
    assert mean == pytest.approx([2.0, 3.0, 3.0])
    first = stats.bootstrap_ci(m[:, 0], n_resamples=B, seed=4)
    assert (lo[0], hi[0]) == pytest.approx((first.low, first.high))
    assert np.isnan(lo[2]) and np.isnan(hi[2])  # one seed: no interval


def _eval_rows(variant, seeds, clean, perturbed, status="finished"):
    rows = []
    for s in seeds:
        for cond, family, level, ret in (("clean", "clean", 0.0, clean[s]), ("noise=0.1", "noise", 0.1, perturbed[s])):
            for ep in range(2):
                rows.append(dict(task="walker_walk", variant=variant, seed=s, condition=cond, family=family,
                                 level=level, episode=ep, **{"return": ret + ep}, status=status))  # fmt: skip
    return rows


def test_claims_pair_by_seed_and_report_missing_variants():
    ev = pd.DataFrame(
        _eval_rows("baseline", [0, 1, 2], {0: 500, 1: 600, 2: 700}, {0: 300, 1: 320, 2: 340})
        + _eval_rows("zd5", [0, 1, 2], {0: 510, 1: 590, 2: 720}, {0: 400, 1: 410, 2: 450})
    )
    table = claims.compute_claims(eval=ev, tasks=["walker_walk"], n_resamples=B, min_seeds=3)
    c1 = table[(table.claim == "C1") & table.primary].iloc[0]
    assert c1.comparison == "zd5 - baseline" and bool(c1.paired)
    default = claims.compute_claims(eval=ev, tasks=["walker_walk"], n_resamples=B)
    assert default.loc[c1.name, "verdict"] == "too few seeds (n < 5)"  # 3 seeds: below the default bar
    assert c1.effect == pytest.approx(((400 - 300) + (410 - 320) + (450 - 340)) / 3)
    assert c1.verdict == "supported" and c1.ci_low > 0
    by_hand = stats.difference([400.5, 410.5, 450.5], [300.5, 320.5, 340.5], paired=True, n_resamples=B)
    assert (c1.ci_low, c1.ci_high) == pytest.approx((by_hand.low, by_hand.high))
    missing = table[table.verdict == "not run"]
    assert {"C2", "C3", "C4"} <= set(missing.claim)
    assert missing.note.str.contains("has no rows|has no run status|no rollout table|no curves table").all()


def test_claims_without_any_table_are_all_not_run():
    table = claims.compute_claims(tasks=["walker_walk", "cheetah_run"])
    assert (table.verdict == "not run").all() and table.note.str.len().gt(0).all()
    assert "no paper zero-drift level for cheetah_run" in table.note.tolist()


def test_claims_row_carries_each_sides_iqm_from_four_seeds():
    seeds = [0, 1, 2, 3, 4]
    ev = pd.DataFrame(
        _eval_rows("baseline", seeds, dict.fromkeys(seeds, 500), {0: 300, 1: 310, 2: 320, 3: 330, 4: 900})
        + _eval_rows("zd5", seeds, dict.fromkeys(seeds, 500), {0: 400, 1: 410, 2: 420, 3: 430, 4: 440})
    )
    table = claims.compute_claims(eval=ev, tasks=["walker_walk"], n_resamples=B)
    c1 = table[(table.claim == "C1") & table.primary].iloc[0]
    # Per seed: mean over the perturbed condition's 2 episodes (ret, ret + 1).
    assert c1.iqm_b == pytest.approx(stats.iqm(np.array([300.5, 310.5, 320.5, 330.5, 900.5])))
    assert c1.iqm_a == pytest.approx(stats.iqm(np.array([400.5, 410.5, 420.5, 430.5, 440.5])))
    assert c1.verdict in ("supported", "inconclusive", "contradicted")  # 5 seeds: at the bar, decided
