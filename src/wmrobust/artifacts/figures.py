"""The figures of the artifacts and the numbers they show.

``*_summary`` turns an aggregated table into the tidy numbers to show (mean and
95% bootstrap interval over seeds, see ``wmrobust.stats``); ``plot_*`` draws them
in the style of ``wmrobust.artifacts.style``.
"""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from wmrobust import claims, stats
from wmrobust.artifacts.spec import Spec, family_order, plural, restrict, spec_order
from wmrobust.artifacts.style import (
    FRAMES_FORMAT, Style, draw_band, finish_figure, line_kw, mark_prefill, no_data, set_style, variant_styles,
)
from wmrobust.perturb.families import FAMILIES
ROLLOUT_METRICS = {
    "obs_mse": "observation MSE",
    "latent_dist": "latent distance",
    "reward_error": "reward error",
}
SPLIT_TITLES = {"eval": "eval return", "train": "train return"}


# ---------------------------------------------------------------- learning curves


def diverged_runs(curves: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """(task, variant, seed, frames) of every diverged run; frames from the runs table when it has them."""
    flagged = curves.loc[curves["status"] == "diverged", ["task", "variant", "seed"]].drop_duplicates()
    if runs is not None and "status" in runs:
        from_runs = runs.loc[runs["status"] == "diverged", ["task", "variant", "seed"]]
        flagged = pd.concat([flagged, from_runs]).drop_duplicates()
    last = curves.groupby(["task", "variant", "seed"])["frames"].max().rename("frames").reset_index()
    out = flagged.merge(last, on=["task", "variant", "seed"], how="left")
    if runs is not None and "diverged_at_frames" in runs:
        at = runs[["task", "variant", "seed", "diverged_at_frames"]]
        out = out.merge(at, on=["task", "variant", "seed"], how="left")
        out["frames"] = out["diverged_at_frames"].where(out["diverged_at_frames"].notna(), out["frames"])
        out = out.drop(columns="diverged_at_frames")
    return out.reset_index(drop=True)


def _seed_matrix(g: pd.DataFrame, x: str, value: str, grid: np.ndarray, interpolate: bool) -> np.ndarray:
    """Seeds x grid points; a seed's curve is interpolated inside its own x range only."""
    rows = []
    for _, s in g.groupby("seed"):
        s = s.groupby(x)[value].mean().dropna()
        if s.empty:
            continue
        if interpolate:
            xs = s.index.to_numpy(float)
            vals = np.interp(grid, xs, s.to_numpy(float))
            vals[(grid < xs.min()) | (grid > xs.max())] = np.nan
        else:
            vals = s.reindex(grid).to_numpy(float)
        rows.append(vals)
    return np.array(rows) if rows else np.full((0, len(grid)), np.nan)


def series_summary(
    df: pd.DataFrame, by: list[str], x: str, value: str, spec: Spec, interpolate: bool = False
) -> pd.DataFrame:
    """Mean over seeds and 95% bootstrap interval of ``value`` at each ``x`` per group of ``by``."""
    out = []
    for key, g in df.groupby(by, sort=False):
        grid = np.sort(g[x].dropna().unique()).astype(float)
        m = _seed_matrix(g, x, value, grid, interpolate)
        if m.shape[0] == 0:
            continue
        mean, lo, hi, n = stats.bootstrap_curve(m, spec.n_resamples, seed=spec.bootstrap_seed)
        ids = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        out.append(pd.DataFrame({**ids, x: grid, "n_seeds": n, "mean": mean, "ci_low": lo, "ci_high": hi}))
    cols = [*by, x, "n_seeds", "mean", "ci_low", "ci_high"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)


def curve_summary(curves: pd.DataFrame, spec: Spec, diverged: pd.DataFrame) -> pd.DataFrame:
    """Return vs env frames per (task, split, variant), finished runs only."""
    curves = restrict(curves, spec)
    keys = ["task", "variant", "seed"]
    bad = curves[keys].merge(diverged[keys].assign(_div=True), on=keys, how="left")["_div"].fillna(False)
    ok = curves[~bad.to_numpy(bool)]
    return series_summary(ok, ["task", "split", "variant"], "frames", "return", spec, interpolate=True)


def plot_learning_curves(
    summary: pd.DataFrame, curves: pd.DataFrame, diverged: pd.DataFrame, spec: Spec
) -> plt.Figure:
    """Rows: tasks; columns: eval and train return vs env frames; x markers where runs diverged."""
    set_style()
    styles = variant_styles(spec.variants)
    splits = ["eval", "train"]
    fig, axes = plt.subplots(len(spec.tasks), 2, figsize=(12, 4.2 * len(spec.tasks)), squeeze=False)
    diverged = diverged[diverged["variant"].isin(spec.variants) & diverged["task"].isin(spec.tasks)]
    for i, task in enumerate(spec.tasks):
        for j, split in enumerate(splits):
            ax = axes[i, j]
            drew = False
            for v in spec.variants:
                n_div = int(((diverged["task"] == task) & (diverged["variant"] == v)).sum())
                label = v + (f" ({n_div} diverged)" if n_div else "")
                s = summary[(summary["task"] == task) & (summary["split"] == split) & (summary["variant"] == v)]
                if not s.empty:
                    ax.plot(s["frames"], s["mean"], lw=2, label=label, **line_kw(styles[v]))
                    draw_band(ax, styles[v], s["ci_low"], s["ci_high"], s["frames"])
                    drew = True
                drew |= _draw_diverged(ax, curves, diverged, task, split, v, styles[v], label)
            if drew:
                mark_prefill(ax, spec)
            else:
                no_data(ax)
            ax.set_title(f"{task}: {SPLIT_TITLES[split]}")
            ax.set_xlabel("env frames")
            ax.set_ylabel("episode return")
            ax.xaxis.set_major_formatter(FRAMES_FORMAT)
    finish_figure(fig, axes, spec)
    return fig


def _draw_diverged(ax, curves, diverged, task, split, variant, style: Style, label) -> bool:
    """A diverged run: its partial curve dotted, an x at its divergence point."""
    color = style.color
    runs = diverged[(diverged["task"] == task) & (diverged["variant"] == variant)]
    for _, run in runs.iterrows():
        c = curves[
            (curves["task"] == task) & (curves["variant"] == variant) & (curves["seed"] == run["seed"])
            & (curves["split"] == split)
        ].sort_values("frames")  # fmt: skip
        c = c[np.isfinite(c["return"].astype(float))]
        if not c.empty:
            ax.plot(c["frames"], c["return"], color=color, lw=1, ls=":", alpha=0.8)
            y = float(c["return"].iloc[-1])
            ax.plot([run["frames"]], [y], marker="x", ms=11, mew=2.5, color=color, ls="none")
        else:
            trans = matplotlib.transforms.blended_transform_factory(ax.transData, ax.transAxes)
            ax.plot([run["frames"]], [0.03], marker="x", ms=11, mew=2.5, color=color, transform=trans)
    if not runs.empty:
        # Legend entries: the variant (if it has no finished seed to draw) and what the x means.
        ax.plot([], [], lw=2, label=label, **line_kw(style))
        ax.plot([], [], color="0.3", marker="x", ms=9, mew=2, ls=":", lw=1, label="diverged run (x: divergence)")
    return not runs.empty


# ---------------------------------------------------------------- robustness (return per family and level)


def robustness_summary(eval_df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Mean/IQM return and intervals per (task, variant, family, level); diverged seeds counted beside."""
    ev = restrict(eval_df, spec)
    finished = ev[(ev["status"] != "diverged") & np.isfinite(ev["return"].astype(float))]
    keys = ["task", "variant", "family", "level"]
    out = stats.summarize(finished, keys, "return", n_resamples=spec.n_resamples, seed=spec.bootstrap_seed)
    n_div = (
        ev[ev["status"] == "diverged"].groupby(["task", "variant"])["seed"].nunique().rename("n_diverged")
    )
    out = out.merge(n_div.reset_index(), on=["task", "variant"], how="left")
    out["n_diverged"] = out["n_diverged"].fillna(0).astype(int)
    return spec_order(out, spec)


def plot_robustness(summary: pd.DataFrame, spec: Spec) -> plt.Figure:
    """Return vs perturbation level, one panel per family (rows: tasks); the clean return at the neutral level."""
    set_style()
    styles = variant_styles(spec.variants)
    families = spec.families or family_order(summary["family"])
    families = [f for f in families if f != "clean"]
    if len(spec.tasks) == 1:
        ncol = min(3, len(families))
        nrow = math.ceil(len(families) / ncol)
        panels = [(spec.tasks[0], f) for f in families]
    else:
        ncol, nrow = len(families), len(spec.tasks)
        panels = [(t, f) for t in spec.tasks for f in families]
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.9 * nrow), squeeze=False)
    for ax, (task, fam) in zip(axes.ravel(), panels):
        # The clean return sits where the family changes nothing; a composition such as
        # noise+mask is not in the registry: labelled by its name, clean at 0.
        neutral, unit = (FAMILIES[fam].neutral, FAMILIES[fam].unit) if fam in FAMILIES else (0.0, fam)
        drew = False
        for v in spec.variants:
            rows = summary[(summary["task"] == task) & (summary["variant"] == v)]
            clean = rows[rows["family"] == "clean"].assign(level=neutral)
            s = pd.concat([clean, rows[rows["family"] == fam]]).sort_values("level")
            if s.empty:
                continue
            n_div = int(rows["n_diverged"].max()) if not rows.empty else 0
            label = v + (f" ({n_div} diverged)" if n_div else "")
            ax.errorbar(
                s["level"], s["mean"], yerr=[s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]],
                color=styles[v].color, marker=styles[v].marker, ls=styles[v].linestyle, ms=5, lw=2, capsize=3,
                label=label,
            )  # fmt: skip
            drew = True
        if not drew:
            no_data(ax)
        ax.set_title(fam if len(spec.tasks) == 1 else f"{task}: {fam}")
        ax.set_xlabel(f"perturbation level ({unit})")
        ax.set_ylabel("episode return")
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    finish_figure(fig, axes, spec)
    return fig


# ---------------------------------------------------------------- open-loop rollout error


def rollout_summary(rollout: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Error vs horizon per (task, variant, metric), finished runs only."""
    ro = restrict(rollout, spec)
    ro = ro[ro["status"] != "diverged"] if "status" in ro else ro
    metrics = [m for m in ROLLOUT_METRICS if m in ro]
    long = ro.melt(id_vars=["task", "variant", "seed", "horizon"], value_vars=metrics, var_name="metric")
    return series_summary(long, ["task", "metric", "variant"], "horizon", "value", spec)


def plot_rollout_error(summary: pd.DataFrame, spec: Spec) -> plt.Figure:
    """Rows: tasks; columns: error metrics; log y."""
    set_style()
    styles = variant_styles(spec.variants)
    metrics = [m for m in ROLLOUT_METRICS if m in set(summary["metric"])] or ["obs_mse"]
    fig, axes = plt.subplots(
        len(spec.tasks), len(metrics), figsize=(4.8 * len(metrics), 3.9 * len(spec.tasks)), squeeze=False
    )
    for i, task in enumerate(spec.tasks):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            lowest = np.inf
            for v in spec.variants:
                s = summary[(summary["task"] == task) & (summary["metric"] == metric) & (summary["variant"] == v)]
                s = s[s["mean"] > 0]
                if s.empty:
                    continue
                ax.plot(s["horizon"], s["mean"], lw=2, label=v, **line_kw(styles[v]))
                draw_band(ax, styles[v], s["ci_low"], s["ci_high"], s["horizon"])
                lowest = min(lowest, s["mean"].min())
            if np.isfinite(lowest):
                ax.set_yscale("log")
                # The axis reaches a decade below the lowest mean: an interval's lower bound near 0
                # would stretch a log axis over many decades.
                ax.set_ylim(bottom=max(ax.get_ylim()[0], lowest / 10))
            else:
                no_data(ax)
            ax.set_title(f"{task}: {ROLLOUT_METRICS[metric]}")
            ax.set_xlabel("open-loop horizon (steps)")
            ax.set_ylabel(f"{ROLLOUT_METRICS[metric]} (log)")
    finish_figure(fig, axes, spec)
    return fig


# ---------------------------------------------------------------- lambda sweep


def lambda_summary(eval_df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Final clean return and mean perturbed return per (task, variant) with the variant's lambda."""
    ev = restrict(eval_df, spec)
    rows = []
    for task in spec.tasks:
        present = [v for v in spec.variants if ((ev["task"] == task) & (ev["variant"] == v)).any()]
        conds = None
        for v in present:
            c = claims.perturbed_conditions(ev[(ev["task"] == task) & (ev["variant"] == v)])
            conds = c if conds is None else conds & c
        for v in present:
            vrows = ev[(ev["task"] == task) & (ev["variant"] == v)]
            lam = float(vrows["lambda"].iloc[0])
            kind = str(vrows["latent_error"].iloc[0]) if "latent_error" in vrows else ""
            per_seed = {"final clean return": claims.clean_return(ev, task, v)[0]}
            if conds:
                per_seed["mean perturbed return"] = claims.perturbed_return(ev, task, v, conds)[0]
            for statistic, values in per_seed.items():
                est = stats.bootstrap_ci(values, n_resamples=spec.n_resamples, seed=spec.bootstrap_seed)
                rows.append(dict(
                    task=task, variant=v, latent_error=kind, **{"lambda": lam}, statistic=statistic,
                    n_seeds=est.n_a, n_diverged=claims.diverged_seeds(vrows), mean=est.estimate,
                    ci_low=est.low, ci_high=est.high, n_conditions=len(conds or ()),
                ))  # fmt: skip
    columns = ["task", "variant", "latent_error", "lambda", "statistic", "n_seeds", "n_diverged", "mean",
               "ci_low", "ci_high", "n_conditions"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _sweep_label(r: pd.Series) -> str:
    label = rf"{r['variant']} ($\lambda$ = {r['lambda']:g})"
    return label + (f" ({r['n_diverged']} diverged)" if r["n_diverged"] else "")


def plot_lambda_sweep(summary: pd.DataFrame, spec: Spec) -> plt.Figure:
    """Columns: final clean return, mean perturbed return, vs lambda (log x); lambda = 0 variants as bands."""
    set_style()
    styles = variant_styles(spec.variants)
    statistics = ["final clean return", "mean perturbed return"]
    fig, axes = plt.subplots(len(spec.tasks), 2, figsize=(11, 4.2 * len(spec.tasks)), squeeze=False)
    for i, task in enumerate(spec.tasks):
        for j, statistic in enumerate(statistics):
            ax = axes[i, j]
            s = summary[(summary["task"] == task) & (summary["statistic"] == statistic)]
            if s.empty:
                no_data(ax)
            else:
                sweep = s[s["lambda"] > 0].sort_values("lambda")
                for kind, g in sweep.groupby("latent_error", sort=False):
                    kind = kind.replace("_", " ").replace("nonzero", "non-zero")
                    label = f"sweep ({kind} latent error)"
                    ax.plot(g["lambda"], g["mean"], color="0.35", lw=1.5, zorder=1, label=label)
                for _, r in sweep.iterrows():
                    ax.errorbar(
                        [r["lambda"]], [r["mean"]], yerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]],
                        color=styles[r["variant"]].color, marker=styles[r["variant"]].marker, ms=7, capsize=4, lw=2,
                        ls="none",
                        label=_sweep_label(r),
                    )  # fmt: skip
                for _, r in s[s["lambda"] <= 0].iterrows():
                    color = styles[r["variant"]].color
                    ax.axhline(r["mean"], color=color, ls="--", lw=1.5, label=_sweep_label(r))
                    draw_band(ax, styles[r["variant"]], r["ci_low"], r["ci_high"])
                ax.set_xscale("log")
            ax.set_title(f"{task}: {statistic}")
            ax.set_xlabel(r"Jacobian regularization weight $\lambda$ (log)")
            ax.set_ylabel("episode return")
    finish_figure(fig, axes, spec, ncol=3)
    return fig


# ---------------------------------------------------------------- learning against published curves

PUBLISHED_LABEL = "DreamerV3 (published)"


def learning_summary(curves: pd.DataFrame, runs: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Evaluation return vs env frames: every seed of every variant, the IQM over its finished
    seeds, and the published DreamerV3 seeds (same task and observations) with their IQM, up to
    our last frame. Columns: source (ours, published), task, variant, seed (NaN for the IQM),
    stat (seed, iqm), frames, return, status."""
    from wmrobust.published import published_curves

    ours = restrict(curves, spec)
    ours = ours[ours["split"] == "eval"].groupby(["task", "variant", "seed", "frames", "status"], as_index=False)["return"].mean()
    parts = [ours.assign(source="ours", stat="seed")]
    for (task, variant), g in ours[ours["status"] != "diverged"].groupby(["task", "variant"]):
        iqm = g.groupby("frames")["return"].agg(stats.iqm).reset_index()
        parts.append(iqm.assign(source="ours", stat="iqm", task=task, variant=variant, status="finished"))
    for task, g in ours.groupby("task"):
        obs = runs.loc[runs["task"] == task, "env.obs"].iloc[0]
        ref = published_curves(task, obs)
        ref = ref[ref["frames"] <= g["frames"].max()]
        if ref.empty:
            continue
        parts.append(ref.assign(source="published", stat="seed", variant=PUBLISHED_LABEL, status="finished"))
        iqm = ref.groupby("frames")["return"].agg(stats.iqm).reset_index()
        parts.append(iqm.assign(source="published", stat="iqm", task=task, variant=PUBLISHED_LABEL, status="finished"))
    cols = ["source", "task", "variant", "seed", "stat", "frames", "return", "status"]
    return pd.concat(parts, ignore_index=True)[cols]


def plot_learning(summary: pd.DataFrame, spec: Spec) -> plt.Figure:
    """Rows: tasks; columns: the task's variants. Thin lines: seeds (dotted where a run diverged);
    thick: the IQM; grey: the published DreamerV3 seeds, grey dashed: their IQM."""
    set_style()
    styles = variant_styles(spec.variants)
    ours, published = summary[summary["source"] == "ours"], summary[summary["source"] == "published"]
    shown = {task: [v for v in spec.variants if ((ours["task"] == task) & (ours["variant"] == v)).any()]
             for task in spec.tasks}  # fmt: skip
    ncols = max([len(vs) for vs in shown.values()] + [1])
    fig, axes = plt.subplots(len(spec.tasks), ncols, figsize=(3.6 * ncols, 3.4 * len(spec.tasks)), squeeze=False,
                             sharey=True)  # fmt: skip
    for i, task in enumerate(spec.tasks):
        ref = published[published["task"] == task]
        for j in range(ncols):
            ax = axes[i, j]
            if j >= len(shown[task]):
                ax.axis("off") if shown[task] else no_data(ax)
                continue
            variant = shown[task][j]
            for _, s in ref[ref["stat"] == "seed"].groupby("seed"):
                ax.plot(s["frames"], s["return"], color="0.6", lw=0.8, marker="o", ms=3, label=f"{PUBLISHED_LABEL}: seeds")
            iqm = ref[ref["stat"] == "iqm"]
            if not iqm.empty:
                ax.plot(iqm["frames"], iqm["return"], color="0.45", ls="--", lw=2, label=f"{PUBLISHED_LABEL}: IQM")
            style, mine = styles[variant], ours[(ours["task"] == task) & (ours["variant"] == variant)]
            for _, s in mine[mine["stat"] == "seed"].groupby("seed"):
                ax.plot(s["frames"], s["return"], color=style.color, lw=0.8, alpha=0.5,
                        ls=":" if (s["status"] == "diverged").any() else "-")  # fmt: skip
            mean = mine[mine["stat"] == "iqm"]
            ax.plot(mean["frames"], mean["return"], lw=2.5, label=f"{variant}: IQM (thin: seeds)", **line_kw(style))
            ax.set_title(f"{task}: {variant}")
            ax.set_xlabel("env frames")
            ax.xaxis.set_major_formatter(FRAMES_FORMAT)
        axes[i, 0].set_ylabel("evaluation return")
    finish_figure(fig, axes, spec)
    return fig


def learning_notes(runs: pd.DataFrame, summary: pd.DataFrame, spec: Spec) -> list[str]:
    """How our agent and the published one differ, and where ours stands against it."""
    notes = []
    for task in spec.tasks:
        cfg = runs[runs["task"] == task]
        if cfg.empty:
            continue
        r = cfg.iloc[0]
        starts = int(r["agent.imag_starts"]) or "all"
        notes.append(
            f"{task}, ours: {r['agent.preset']} preset at size {r['agent.size']} from {r['env.obs']}, train ratio "
            f"{float(r['train.train_ratio']):g}, batch {int(r['train.batch_size'])}x{int(r['train.batch_length'])}, "
            f"imagination from {starts} states; evaluation return: mean of "
            f"{plural(int(r['train.eval_episodes']), 'policy-mode episode')} every "
            f"{int(r['train.eval_every_frames']):,} env frames."
        )
        ref = summary[(summary["source"] == "published") & (summary["task"] == task)]
        if ref.empty:
            notes.append(f"{task}: no published DreamerV3 curve from {r['env.obs']} within our frames.")
            continue
        last = ref["frames"].max()
        theirs = ref[(ref["stat"] == "iqm") & (ref["frames"] == last)]["return"].iloc[0]
        base = summary[(summary["source"] == "ours") & (summary["task"] == task) & (summary["stat"] == "iqm")
                       & (summary["variant"] == spec.variants[0]) & (summary["frames"] == last)]  # fmt: skip
        standing = (f"; our {spec.variants[0]}'s IQM there: {base['return'].iloc[0]:.0f} "
                    f"({base['return'].iloc[0] / theirs:.0%} of theirs)") if not base.empty else ""  # fmt: skip
        notes.append(
            f"{task}, published: DreamerV3 from {r['env.obs']} (2023 recipe: train ratio 512, batch 16x64, a "
            f"~16M-parameter world model), {ref['seed'].nunique()} seeds; its score files log training-episode "
            f"returns of the stochastic policy, not policy-mode evaluations. IQM at {last:,} frames: "
            f"{theirs:.0f}{standing}."
        )
    return notes
