"""Every artifact notebook runs on small synthetic aggregated tables and writes its declared outputs."""

from __future__ import annotations

import itertools
import json
import re
import runpy
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from wmrobust.artifacts.tables import verdict_count

NOTEBOOKS = Path(__file__).resolve().parents[1] / "workflow" / "notebooks"
TASKS = ["walker_walk", "quadruped_walk"]
SEEDS = [0, 1, 2]
# variant -> (latent_error, sigma2, lambda, return scale, robustness, error growth per step)
VARIANTS = {
    "baseline": ("none", 0.0, 0.0, 1.00, 0.60, 0.060),
    "zd01": ("zero_drift", 0.1, 0.0, 1.00, 0.70, 0.060),
    "zd1": ("zero_drift", 1.0, 0.0, 0.98, 0.72, 0.060),
    "zd5": ("zero_drift", 5.0, 0.0, 0.95, 0.80, 0.060),
    "zd01_jac": ("zero_drift", 0.1, 0.01, 1.00, 0.72, 0.040),
    "zd5_jac": ("zero_drift", 5.0, 0.01, 0.97, 0.82, 0.040),
    "nzd": ("nonzero_drift", 2.5, 0.0, 0.60, 0.50, 0.080),
    "nzd_jac": ("nonzero_drift", 2.5, 0.01, 0.90, 0.65, 0.045),
    "nzd_lam1e-3": ("nonzero_drift", 2.5, 0.001, 0.75, 0.55, 0.060),
    "nzd_lam1e-1": ("nonzero_drift", 2.5, 0.1, 0.92, 0.68, 0.040),
    "nzd_lam1": ("nonzero_drift", 2.5, 1.0, 0.80, 0.66, 0.035),
    "aug": ("none", 0.0, 0.0, 0.97, 0.75, 0.060),
    "l2dyn": ("nonzero_drift", 2.5, 0.0, 0.70, 0.55, 0.060),
    "long": ("nonzero_drift", 2.5, 0.0, 0.62, 0.50, 0.080),
    "long_jac": ("nonzero_drift", 2.5, 0.01, 0.88, 0.62, 0.045),
}
DIVERGED = ("walker_walk", "nzd", 2, 40_000)  # task, variant, seed, frames of divergence
FRAMES = 100_000
CONDITIONS = [("clean", 0.0)] + [
    (f, lv)
    for f, levels in {
        "noise": (0.1, 0.3), "rotation": (10.0, 30.0), "mask": (0.25, 0.5),
        "mass": (0.5, 1.5), "friction": (0.5, 1.5), "latent": (1.0, 5.0),
    }.items()
    for lv in levels
]  # fmt: skip


def _meta(variant: str) -> dict:
    kind, sigma2, lam, *_ = VARIANTS[variant]
    return {"latent_error": kind, "sigma2": sigma2, "lambda": lam}


def _diverged(task, variant, seed) -> bool:
    return (task, variant, seed) == DIVERGED[:3]


def _severity(family: str, level: float) -> float:
    """0 (clean) .. ~1 (the hardest level) so returns drop with the level."""
    scale = {"noise": 0.3, "rotation": 30, "mask": 0.5, "latent": 5}
    if family in ("mass", "friction"):
        return abs(level - 1.0) / 0.5
    return level / scale[family] if family in scale else 0.0


def synthetic_tables(variants=None, tasks=TASKS) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    variants = variants or list(VARIANTS)
    curves, ev, rollout, jac, runs = [], [], [], [], []
    for task in tasks:
        top = 900.0 if task.startswith("walker") else 600.0
        for v in variants:
            _, _, lam, scale, robust, growth = VARIANTS[v]
            for seed in SEEDS:
                div = _diverged(task, v, seed)
                status = "diverged" if div else "finished"
                end = DIVERGED[3] if div else FRAMES
                final = top * scale + rng.normal(0, 20)
                for split, step in (("eval", 10_000), ("train", 5_000)):
                    for frames in range(step, end + 1, step):
                        ret = final * (1 - np.exp(-frames / 30_000)) + rng.normal(0, 25)
                        curves.append(dict(task=task, variant=v, seed=seed, frames=frames, split=split,
                                           **{"return": ret}, status=status, **_meta(v)))  # fmt: skip
                for family, level in CONDITIONS:
                    cond = "clean" if family == "clean" else f"{family}={level:g}"
                    for episode in range(2):
                        drop = (1 - robust) * _severity(family, level)
                        ret = np.nan if div else final * (1 - drop) + rng.normal(0, 15)
                        ev.append(dict(task=task, variant=v, seed=seed, preset="dreamerv2", **_meta(v),
                                       condition=cond, family=family, level=level, episode=episode,
                                       episode_seed=1000 + episode, **{"return": ret}, status=status))  # fmt: skip
                for h in range(1, 51):
                    mse = np.nan if div else 0.002 * np.exp(growth * h) * rng.lognormal(0, 0.1)
                    rollout.append(dict(task=task, variant=v, seed=seed, **_meta(v), horizon=h, obs_mse=mse,
                                        latent_dist=np.nan if div else 0.5 * np.sqrt(h) * (1 + growth),
                                        reward_error=np.nan if div else 0.01 * h * growth, status=status))  # fmt: skip
                for norm, val in (("frobenius", 10.0 / (1 + 100 * lam)), ("spectral", 2.0 / (1 + 100 * lam))):
                    jac.append(dict(task=task, variant=v, seed=seed, **_meta(v), norm=norm,
                                    value=np.nan if div else val * rng.lognormal(0, 0.05), status=status))  # fmt: skip
                kind, sigma2, lam = VARIANTS[v][:3]
                runs.append({
                    "task": task, "variant": v, "seed": seed, "status": status, "frames": end,
                    "config_hash": f"{abs(hash((task, v))) % 10**8:08d}",
                    "diverged_at_frames": float(DIVERGED[3]) if div else np.nan, **_meta(v),
                    "agent.preset": "dreamerv2", "agent.size": "small", "train.frames": FRAMES,
                    "env.action_repeat": 2, "env.task": task, "agent.latent_error.kind": kind,
                    "agent.latent_error.sigma2": sigma2, "agent.latent_error.mu_range": [0.0, 5.0],
                    "agent.jacobian.weight": lam, "agent.imag_horizon": 45 if v.startswith("long") else 15,
                    "agent.aug_noise_std": 0.1 if v == "aug" else 0.0,
                    "agent.transition_weight_decay": 1e-4 if v == "l2dyn" else 0.0, "train.batch_size": 16,
                    "seed": seed, "env.obs": "vector", "agent.imag_starts": 256, "train.train_ratio": 256.0,
                    "train.batch_length": 64, "train.eval_episodes": 5, "train.eval_every_frames": 10_000,
                })  # fmt: skip
    return {
        "curves": pd.DataFrame(curves), "eval": pd.DataFrame(ev), "rollout": pd.DataFrame(rollout),
        "jacobian": pd.DataFrame(jac), "runs": pd.DataFrame(runs),
    }  # fmt: skip


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, commits: dict[str, str] | None = None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, df in tables.items():
        path = folder / f"{name}.parquet"
        df.to_parquet(path, index=False)
        commit = (commits or {}).get(name, "a" * 40)
        path.with_name(path.name + ".provenance.json").write_text(json.dumps({"git_commit": commit}))
        paths[name] = str(path)
    return paths


EPISODES = {"eval": {"episodes": 2, "frames": 1000}, "curves": {"episodes": 1, "frames": 1000, "every": 10000},
            "rollout": {"episodes": 3, "frames": 500}}
SCALE_INFO = {"frames": FRAMES, "seeds": SEEDS, "episodes": EPISODES, "size": "small", "preset": "dreamerv2"}
FIGURE_OUT = ("png", "pdf", "csv", "caption", "provenance")
TABLE_OUT = ("csv", "md", "tex", "caption", "provenance")
CLAIMS_OUT = ("md", "csv", "tex", "caption", "provenance")
# artifact -> (notebook, inputs, variants, tasks, outputs, extra params)
ARTIFACTS = {
    "learning": ("learning", ["curves", "runs"], ["baseline", "zd5", "nzd", "nzd_jac"], TASKS, FIGURE_OUT, {}),
    "fig1": ("robustness", ["eval"], ["baseline", "zd01", "zd1", "zd5"], ["walker_walk"], FIGURE_OUT, {}),
    "fig3": ("learning_curves", ["curves", "runs"], ["baseline", "zd5", "zd5_jac"], ["walker_walk"], FIGURE_OUT, {}),
    "fig4": ("learning_curves", ["curves", "runs"], ["baseline", "nzd", "nzd_jac"], ["walker_walk"], FIGURE_OUT, {}),
    "long_horizon": ("learning_curves", ["curves"], ["long", "long_jac"], ["walker_walk"], FIGURE_OUT, {}),
    "rollout_error": ("rollout_error", ["rollout", "jacobian"], ["baseline", "zd5", "zd5_jac", "nzd", "nzd_jac"],
                      TASKS, FIGURE_OUT, {}),
    "lambda_sweep": ("lambda_sweep", ["eval"], ["nzd", "nzd_lam1e-3", "nzd_jac", "nzd_lam1e-1", "nzd_lam1"],
                     ["walker_walk"], FIGURE_OUT, {}),
    "table1": ("robustness", ["eval"], ["baseline", "zd01", "zd1", "zd5"], ["walker_walk"], TABLE_OUT, {}),
    "dynamics": ("robustness", ["eval"], ["baseline", "zd5", "nzd", "nzd_jac"], TASKS, TABLE_OUT,
                 {"families": ["mass", "friction"]}),
    "hyperparameters": ("hyperparameters", ["runs"], list(VARIANTS), TASKS, TABLE_OUT, {}),
    "claims": ("claims", ["eval", "curves", "rollout", "runs"], list(VARIANTS), TASKS, CLAIMS_OUT, {}),
}  # fmt: skip
N_RESAMPLES = 300
MIN_SEEDS = 3  # the synthetic grid's 3 seeds decide; the default bar (5) is tested apart


def make_snakemake(artifact: str, paths: dict, out: Path, inputs=None, **overrides) -> SimpleNamespace:
    notebook, default_inputs, variants, tasks, outputs, extra = ARTIFACTS[artifact]
    inputs = default_inputs if inputs is None else inputs
    ext = {"caption": "caption.md", "provenance": "provenance.json"}
    params = dict(
        artifact=artifact, caption=f"Synthetic test of {artifact}.", variants=variants, tasks=tasks,
        sources=inputs, scale="test", scale_info=SCALE_INFO, inferred=artifact != "fig1", n_resamples=N_RESAMPLES,
        min_seeds=MIN_SEEDS, **extra,
    )  # fmt: skip
    params.update(overrides)
    return SimpleNamespace(
        input=SimpleNamespace(**{k: paths[k] for k in inputs}),
        output=SimpleNamespace(**{k: str(out / f"{artifact}.{ext.get(k, k)}") for k in outputs}),
        params=SimpleNamespace(**params),
    )


def run_notebook(artifact: str, sm: SimpleNamespace) -> None:
    runpy.run_path(str(NOTEBOOKS / f"{ARTIFACTS[artifact][0]}.py"), init_globals={"snakemake": sm}, run_name="__main__")


@pytest.fixture(scope="module")
def tables():
    return synthetic_tables()


@pytest.fixture(scope="module")
def paths(tables, tmp_path_factory):
    return write_tables(tables, tmp_path_factory.mktemp("aggregate"))


@pytest.mark.parametrize("artifact", list(ARTIFACTS))
def test_notebook_writes_every_output(artifact, paths, tmp_path):
    sm = make_snakemake(artifact, paths, tmp_path)
    run_notebook(artifact, sm)
    for name, path in vars(sm.output).items():
        assert Path(path).stat().st_size > 0, f"{artifact}: empty {name}"
    if hasattr(sm.output, "png"):
        assert Path(sm.output.png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    caption = Path(sm.output.caption).read_text()
    assert "Scale `test`" in caption and "3 seeds" in caption
    assert ("inferred" in caption) == sm.params.inferred
    prov = json.loads(Path(sm.output.provenance).read_text())
    assert prov["artifact"] == artifact and set(prov["inputs"]) == set(vars(sm.input).values())
    assert not list(tmp_path.glob(".*.tmp"))


def test_table_cell_equals_mean_of_per_seed_means(tables, paths, tmp_path):
    sm = make_snakemake("table1", paths, tmp_path)
    run_notebook("table1", sm)
    out = pd.read_csv(sm.output.csv)
    ev = tables["eval"]
    for variant, family, level in [("zd5", "noise", 0.3), ("baseline", "clean", 0.0), ("zd1", "mass", 1.5)]:
        rows = ev[(ev.task == "walker_walk") & (ev.variant == variant) & (ev.family == family) & (ev.level == level)]
        by_hand = np.mean([rows.loc[rows.seed == s, "return"].mean() for s in SEEDS])
        got = out[(out.variant == variant) & (out.family == family) & (out.level == level)]
        assert len(got) == 1 and got["n_seeds"].iloc[0] == 3
        assert got["mean"].iloc[0] == pytest.approx(by_hand)
        assert got["ci_low"].iloc[0] <= by_hand <= got["ci_high"].iloc[0]
    md = Path(sm.output.md).read_text()
    cell = out[(out.variant == "zd5") & (out.family == "noise") & (out.level == 0.3)].iloc[0]
    assert f"{cell['mean']:.0f} [{cell['ci_low']:.0f}, {cell['ci_high']:.0f}]" in md
    assert "IQM not shown" in md  # 3 seeds < 4


def test_dynamics_table_keeps_only_requested_families(paths, tmp_path):
    sm = make_snakemake("dynamics", paths, tmp_path)
    run_notebook("dynamics", sm)
    out = pd.read_csv(sm.output.csv)
    assert set(out["family"]) == {"clean", "mass", "friction"}
    assert set(out["task"]) == set(TASKS)
    assert "(+1 diverged)" in Path(sm.output.md).read_text()  # walker nzd seed 2


def test_learning_curves_mark_diverged_runs(paths, tmp_path):
    sm = make_snakemake("fig4", paths, tmp_path)
    run_notebook("fig4", sm)
    caption = Path(sm.output.caption).read_text()
    assert "nzd seed 2 at 40k frames" in caption
    data = pd.read_csv(sm.output.csv)
    late = data[(data.variant == "nzd") & (data.split == "eval") & (data.frames == 100_000)]
    assert late["n_seeds"].iloc[0] == 2  # the diverged seed is excluded from the mean


def test_learning_draws_the_published_seeds_and_says_where_ours_stands(paths, tmp_path):
    sm = make_snakemake("learning", paths, tmp_path)
    run_notebook("learning", sm)
    shown = pd.read_csv(sm.output.csv)
    published = shown[shown["source"] == "published"]
    assert set(published["task"]) == {"walker_walk"}  # no published quadruped curve from vectors
    assert published["frames"].max() <= FRAMES and published.loc[published["stat"] == "seed", "seed"].nunique() == 5
    ours = shown[(shown["source"] == "ours") & (shown["stat"] == "iqm")]
    assert set(ours["variant"]) == {"baseline", "zd5", "nzd", "nzd_jac"}
    caption = Path(sm.output.caption).read_text()
    assert "training-episode returns of the stochastic policy" in caption
    assert re.search(r"our baseline's IQM there: \d+ \(\d+% of theirs\)", caption)
    assert "quadruped_walk: no published DreamerV3 curve from vector" in caption
    assert "bootstrap" not in caption  # the figure draws no interval


def test_claims_report_verdicts_and_not_run(tables, tmp_path):
    # Runs of zd1 and nzd_jac in the grid without results, and no rollout table: their
    # comparisons must be "not run", the rest decided.
    keep = [v for v in VARIANTS if v not in ("zd1", "nzd_jac")]
    sub = {k: df if k == "runs" else df[df.variant.isin(keep)] for k, df in tables.items() if k != "rollout"}
    paths = write_tables(sub, tmp_path / "agg")
    sm = make_snakemake("claims", paths, tmp_path, inputs=["eval", "curves", "runs"], variants=keep)
    run_notebook("claims", sm)
    table = pd.read_csv(sm.output.csv)
    decided = table[table.verdict != "not run"]
    assert set(decided.verdict) <= {"supported", "contradicted", "inconclusive", "too few seeds (n < 3)"}
    assert decided[["effect", "ci_low", "ci_high"]].notna().all().all()
    assert decided[["iqm_a", "iqm_b"]].isna().all().all()  # 3 seeds: too few for an IQM (4)
    not_run = table[table.verdict == "not run"]
    assert not not_run.empty and not_run["note"].str.len().gt(0).all()
    assert (not_run.comparison.str.contains("zd1|nzd_jac") | (not_run.claim == "C4")).all()
    assert "no rollout table" in " ".join(table.loc[table.claim == "C4", "note"])
    # C1 on walker: zd5 is more robust than baseline in the synthetic data.
    c1 = table[(table.claim == "C1") & (table.task == "walker_walk") & table.primary]
    assert c1.comparison.tolist() == ["zd5 - baseline"] and c1.verdict.iloc[0] == "supported"
    # C2 on walker: nzd has a diverged seed -> unpaired, 2 vs 3 seeds, below the bar of 3:
    # reported, not decided.
    c2 = table[(table.claim == "C2") & (table.task == "walker_walk") & (table.statistic == "final clean return")]
    assert (c2.n_seeds_a.iloc[0], c2.n_seeds_b.iloc[0]) == (2, 3) and not c2.paired.iloc[0]
    assert c2.verdict.iloc[0] == "too few seeds (n < 3)" and np.isfinite(c2.effect.iloc[0])
    report = Path(sm.output.md).read_text()
    for claim in ("C1", "C2", "C3", "C4"):
        assert f"## {claim}" in report
    assert "not run" in report and "supported" in report


def test_claims_list_only_what_the_grid_runs_and_name_the_rest(tables, tmp_path):
    # A grid without walker's zd1: its comparison is not a row (it is not "not run"), and the
    # report names it.
    runs = tables["runs"]
    sub = dict(tables, runs=runs[~((runs.task == "walker_walk") & (runs.variant == "zd1"))])
    sm = make_snakemake("claims", write_tables(sub, tmp_path / "agg"), tmp_path)
    run_notebook("claims", sm)
    table = pd.read_csv(sm.output.csv)
    walker = table[table.task == "walker_walk"]
    assert "zd1 - baseline" not in set(walker.comparison) and "zd5 - baseline" in set(walker.comparison)
    assert "Not compared: the test scale does not run a variant of C1 walker_walk: zd1 - baseline" in (
        Path(sm.output.md).read_text())


def test_claims_summary_says_when_seeds_are_too_few_for_a_verdict():
    assert verdict_count("too few seeds (n < 5)", 2) == "2 without a verdict (too few seeds, n < 5)"
    assert verdict_count("supported", 1) == "1 supported"


def test_claims_default_seed_bar_and_smoke_header(paths, tmp_path):
    # The default bar is 5 seeds: the synthetic grid's 3 give no verdict, only effects.
    sm = make_snakemake("claims", paths, tmp_path, min_seeds=None, scale="smoke")
    run_notebook("claims", sm)
    table = pd.read_csv(sm.output.csv)
    decided = table[table.verdict != "not run"]
    assert not decided.empty and set(decided.verdict) == {"too few seeds (n < 5)"}
    assert decided["effect"].notna().all()
    report = Path(sm.output.md).read_text()
    assert "smoke scale checks the machinery; its numbers are not evidence" in report.split("## C1")[0]
    assert "its numbers are not evidence" in Path(sm.output.caption).read_text()  # what the HTML report shows
    assert "IQM a / b" in report and "P(claimed)" in report


def test_claims_full_inputs_decide_every_comparison(paths, tmp_path):
    sm = make_snakemake("claims", paths, tmp_path)
    run_notebook("claims", sm)
    table = pd.read_csv(sm.output.csv)
    assert (table.verdict != "not run").all()
    c4 = table[(table.claim == "C4") & table.primary & (table.task == "quadruped_walk")]
    assert set(c4.verdict) == {"supported"}  # nzd_jac's error grows slower in the synthetic data


def test_mixed_commits_warn_and_reach_the_caption(tables, tmp_path):
    paths = write_tables(tables, tmp_path / "agg", commits={"runs": "b" * 40})
    sm = make_snakemake("fig3", paths, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_notebook("fig3", sm)
    assert any("2 git commits" in str(w.message) for w in caught)
    assert "come from 2 git commits" in Path(sm.output.caption).read_text()
    assert len(json.loads(Path(sm.output.provenance).read_text())["source_commits"]) == 2


def test_source_commits_stand_for_the_aggregation_commit(tables, tmp_path):
    paths = write_tables({k: tables[k] for k in ("curves", "runs")}, tmp_path / "agg")
    for name in ("curves", "runs"):  # aggregated at another commit than the runs were trained at
        Path(paths[name] + ".provenance.json").write_text(
            json.dumps({"git_commit": "c" * 40, "source_commits": ["a" * 40]})
        )
    sm = make_snakemake("fig3", paths, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_notebook("fig3", sm)
    assert json.loads(Path(sm.output.provenance).read_text())["source_commits"] == ["a" * 40]
    assert "git commits" not in Path(sm.output.caption).read_text()


def test_the_caption_names_the_task_it_plots(paths, tmp_path):
    sm = make_snakemake("fig3", paths, tmp_path, caption="{task}. Eval and train scores.",
                        tasks=["walker_walk", "finger_spin"])
    run_notebook("fig3", sm)
    assert Path(sm.output.caption).read_text().startswith("**fig3.** Walker walk and Finger spin. Eval and train")


def test_missing_required_input_names_it(paths, tmp_path):
    sm = make_snakemake("fig3", paths, tmp_path, inputs=["runs"])
    with pytest.raises(ValueError, match="curves"):
        run_notebook("fig3", sm)


# ---------------------------------------------------------------- figures and tables say what they are


@pytest.fixture
def captured_figures(monkeypatch):
    """The Figure each notebook hands to wmrobust.artifacts.spec.write_figure, by artifact."""
    import wmrobust.artifacts.spec as artifact_spec

    figures, write = {}, artifact_spec.write_figure

    def capture(fig, data, output, spec, *args, **kwargs):
        texts = [fig.get_suptitle(), *(t.get_text() for t in fig.texts)]
        legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        lines = {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines()}
        figures[spec.artifact] = SimpleNamespace(texts=texts, legend=legend, lines=lines)
        return write(fig, data, output, spec, *args, **kwargs)

    monkeypatch.setattr(artifact_spec, "write_figure", capture)
    return figures


FIGURES = [a for a, (*_, outputs, _) in ARTIFACTS.items() if outputs == FIGURE_OUT]


@pytest.mark.parametrize("artifact", FIGURES)
def test_figure_shows_scale_frames_seeds_model_and_its_own_episodes(artifact, paths, tmp_path, captured_figures):
    sm = make_snakemake(artifact, paths, tmp_path)
    run_notebook(artifact, sm)
    texts = captured_figures[artifact].texts
    subtitle = "scale test · 100,000 frames · seeds 0, 1, 2 · model small (dreamerv2)"
    assert any(subtitle in t for t in texts), texts
    own = {"eval": "2 eval episodes × 1,000 frames", "curves": "curves: 1 eval episode × 1,000 frames every 10,000",
           "rollout": "3 held-out episodes × 500 frames"}
    for source, text in own.items():
        reads = source in sm.params.sources
        assert any(text in t for t in texts) == reads, (source, texts)


def test_figure_lines_use_the_variant_styles(paths, tmp_path, captured_figures):
    from matplotlib.colors import to_hex

    from wmrobust.artifacts.style import VARIANT_STYLES

    run_notebook("rollout_error", make_snakemake("rollout_error", paths, tmp_path))
    lines = captured_figures["rollout_error"].lines
    for v in ARTIFACTS["rollout_error"][2]:
        style = VARIANT_STYLES[v]
        assert to_hex(lines[v].get_color()) == to_hex(style.color)
        assert lines[v].get_marker() == style.marker


@pytest.mark.parametrize("artifact", ["fig3", "table1", "hyperparameters"])
def test_counts_of_one_are_singular(artifact, paths, tmp_path):
    one = {"episodes": 1, "frames": 500}
    info = {**SCALE_INFO, "seeds": [0], "episodes": {"eval": one, "curves": {**one, "every": 500}, "rollout": one}}
    sm = make_snakemake(artifact, paths, tmp_path, scale_info=info)
    run_notebook(artifact, sm)
    own = {"fig3": "learning curves from 1 evaluation episode of 500 env frames every 500 env frames",
           "table1": "1 evaluation episode of 500 env frames per condition", "hyperparameters": "1 seed (0)"}
    for path in (sm.output.caption, sm.output.tex if hasattr(sm.output, "tex") else sm.output.caption):
        text = Path(path).read_text()
        assert own[artifact] in text and "1 seed (0)" in text
        assert "1 evaluation episodes" not in text and "1 seeds" not in text


def test_caption_gives_the_episodes_of_its_own_data(paths, tmp_path):
    sm = make_snakemake("fig1", paths, tmp_path)
    run_notebook("fig1", sm)
    assert "2 evaluation episodes of 1,000 env frames per condition" in Path(sm.output.caption).read_text()
    sm = make_snakemake("fig3", paths, tmp_path)
    run_notebook("fig3", sm)
    caption = Path(sm.output.caption).read_text()
    assert "learning curves from 1 evaluation episode of 1,000 env frames every 10,000 env frames" in caption
    assert "per condition" not in caption


@pytest.mark.parametrize("artifact", ["table1", "dynamics", "hyperparameters", "claims"])
def test_latex_has_no_markdown(artifact, paths, tmp_path):
    sm = make_snakemake(artifact, paths, tmp_path, caption="A `code` caption with **bold** and 50% of_it.")
    run_notebook(artifact, sm)
    tex = Path(sm.output.tex).read_text()
    assert "`" not in tex and "**" not in tex
    assert r"\texttt{test}" in tex and r"\texttt{code}" in tex and r"50\% of\_it" in tex
    assert "`test`" in Path(sm.output.caption).read_text()  # the Markdown caption keeps its code spans


def test_tex_markdown_escapes_code_spans():
    from wmrobust.artifacts.tables import tex_markdown

    assert tex_markdown("`a_b` & **c%** `") == r"\texttt{a\_b} \& \textbf{c\%} "


def test_variants_a_task_does_not_use_are_left_out(tables, tmp_path, captured_figures):
    # As in the registry's rollout_error: quadruped has no zd5 / zd5_jac runs; "aug" has no rows at all.
    drop = {("quadruped_walk", "zd5"), ("quadruped_walk", "zd5_jac"), *((t, "aug") for t in TASKS)}
    sub = {
        k: df[[(t, v) not in drop for t, v in zip(df.task, df.variant)]]
        for k, df in tables.items()
    }  # fmt: skip
    paths = write_tables(sub, tmp_path / "agg")
    variants = [*ARTIFACTS["rollout_error"][2], "aug"]
    for artifact in ("rollout_error", "dynamics", "hyperparameters"):
        sm = make_snakemake(artifact, paths, tmp_path, variants=variants)
        run_notebook(artifact, sm)
        caption = Path(sm.output.caption).read_text()
        assert "not run" not in caption and "aug" not in caption, caption
        assert "quadruped_walk: baseline 3, nzd 3, nzd_jac 3." in caption
        shown = "walker_walk: baseline, zd5, zd5_jac, nzd, nzd_jac; quadruped_walk: baseline, nzd, nzd_jac."
        assert f"Variants: {shown}" in caption
    assert "aug" not in captured_figures["rollout_error"].legend
    assert "zd5" in captured_figures["rollout_error"].legend


# sRGB -> CIELAB (D65), and Machado et al. (2009) full-severity colour-vision-deficiency matrices (linear RGB).
CVD = {
    "normal": np.eye(3),
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}  # fmt: skip


def _lab(color, cvd="normal") -> np.ndarray:
    from matplotlib.colors import to_rgb

    c = np.asarray(to_rgb(color), float)
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    c = np.clip(np.asarray(CVD[cvd]) @ c, 0, 1)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_delta_e(colors, cvd="normal") -> float:
    labs = [_lab(c, cvd) for c in dict.fromkeys(colors)]
    return min(np.linalg.norm(a - b) for i, a in enumerate(labs) for b in labs[i + 1 :])


def test_palette_colours_differ_clearly_also_for_colour_blind_readers():
    import seaborn as sns

    from wmrobust.artifacts.style import OKABE_ITO

    colors = list(OKABE_ITO.values())
    assert _min_delta_e(colors) > 25
    for cvd in ("protanopia", "deuteranopia", "tritanopia"):
        assert _min_delta_e(colors, cvd) > 15, cvd
    # The old palette fails the same check (orange / brown, pink / magenta).
    assert _min_delta_e(sns.color_palette("colorblind", 10), "deuteranopia") < 15


def test_every_variant_has_one_distinct_style_and_figures_distinct_colours():
    import yaml

    from wmrobust.artifacts.style import OKABE_ITO, SIMILAR_HUES, VARIANT_STYLES, palette, variant_styles

    config = yaml.safe_load((NOTEBOOKS.parents[1] / "config" / "config.yaml").read_text())
    assert set(config["variant_overrides"]) <= set(VARIANT_STYLES)
    styles = list(VARIANT_STYLES.values())
    assert len(set(styles)) == len(styles)  # distinct (colour, marker, line style)
    assert all(st.color in OKABE_ITO.values() for st in styles)
    assert not {st.linestyle for st in styles} & {":", "dotted"} and "x" not in {st.marker for st in styles}
    for artifact, entry in config["artifacts"].items():
        if entry["output"] != "figure":
            continue
        variants = list(dict.fromkeys(v for vs in entry["runs"].values() for v in vs))
        colors = palette(variants)
        assert len(set(colors.values())) == len(variants), artifact
        for a, b in itertools.combinations(variants, 2):  # what a reader tells apart
            sa, sb = VARIANT_STYLES[a], VARIANT_STYLES[b]
            hue = sa.color != sb.color and not any({sa.color, sb.color} <= group for group in SIMILAR_HUES)
            assert hue + (sa.marker != sb.marker) + (sa.linestyle != sb.linestyle) >= 2, (artifact, a, b)
    # Stable across figures: a variant's style does not depend on its companions or order.
    assert variant_styles(["zd5", "baseline"])["zd5"] == variant_styles(["nzd", "zd5"])["zd5"]
    # Variants outside the table get colours not taken in their figure, the same in every figure.
    new = variant_styles(["baseline", "zd5", "nzd", "mine", "yours"])
    assert len({st.color for st in new.values()}) == 5
    mine = variant_styles(["mine"])["mine"]
    companions = [v for v, st in VARIANT_STYLES.items() if st.color != mine.color][:4]
    assert variant_styles([*companions, "mine"])["mine"] == mine


def test_bands_are_edged_log_axes_follow_the_means_and_the_prefill_is_marked():
    from matplotlib.colors import to_hex

    from wmrobust.artifacts.figures import plot_learning_curves, plot_rollout_error
    from wmrobust.artifacts.spec import Spec
    from wmrobust.artifacts.style import VARIANT_STYLES

    spec = Spec(artifact="x", caption="c", variants=["nzd", "nzd_jac"], tasks=["walker_walk"], scale="test",
                scale_info={"prefill_frames": 400})
    horizons = np.arange(1, 11)
    rollout = pd.DataFrame([
        {"task": "walker_walk", "metric": "latent_dist", "variant": v, "horizon": h, "mean": 0.1 * h * k,
         "ci_low": 1e-9, "ci_high": 0.2 * h * k}
        for k, v in enumerate(spec.variants, 1) for h in horizons])  # fmt: skip
    ax = plot_rollout_error(rollout, spec).axes[0]
    assert ax.get_ylim()[0] >= 0.1 / 10 * 0.999  # a decade below the lowest mean, not down to 1e-9
    for v in spec.variants:  # each band edged by two thin lines of its variant's colour
        edges = [ln for ln in ax.get_lines() if ln.get_linewidth() < 1 and to_hex(ln.get_color()) == to_hex(
            VARIANT_STYLES[v].color)]
        assert len(edges) == 2, v
    curves = pd.DataFrame([
        {"task": "walker_walk", "split": s, "variant": v, "frames": f, "mean": f / 10, "ci_low": 0, "ci_high": f / 5}
        for s in ("eval", "train") for v in spec.variants for f in (200, 600, 1200)])  # fmt: skip
    no_runs = pd.DataFrame(columns=["task", "variant", "seed", "frames", "split", "return"])
    fig = plot_learning_curves(curves, no_runs, no_runs[["task", "variant", "seed", "frames"]], spec)
    for ax in fig.axes[:2]:
        spans = [p for p in ax.patches if p.get_x() == 0 and p.get_width() == 400]
        assert len(spans) == 1 and "prefill" in [t.get_text() for t in ax.texts]
