"""Figures, tables, captions and provenance of the artifacts, from aggregated tables.

Each artifact notebook (workflow/notebooks/*.py) calls three kinds of functions:
``*_summary`` turns an aggregated table into the tidy numbers to show (mean and
95% bootstrap interval over seeds, see ``wmrobust.stats``), ``plot_*`` /
``*_table`` draws or lays them out, and ``write_figure`` / ``write_table``
writes the files a Snakemake rule declares, with the caption and the merged
provenance of the inputs.
"""

from __future__ import annotations

import json
import math
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from wmrobust import claims, stats  # noqa: E402
from wmrobust.io import atomic_path, atomic_write_json, atomic_write_text, provenance, read_table  # noqa: E402

TABLES = ("curves", "eval", "rollout", "jacobian", "runs")
FAMILY_ORDER = ("noise", "rotation", "mask", "mass", "friction", "gravity", "latent")
FAMILY_UNITS = {
    "noise": "pixel noise std",
    "rotation": "degrees",
    "mask": "fraction occluded",
    "mass": "mass scale",
    "friction": "friction scale",
    "gravity": "gravity scale",
    "latent": r"latent error $\sigma^2$",
}
# Where the clean condition sits on each family's axis: no change.
IDENTITY_LEVEL = {"mass": 1.0, "friction": 1.0, "gravity": 1.0}
ROLLOUT_METRICS = {
    "obs_mse": "image MSE",
    "latent_dist": "latent distance",
    "reward_error": "reward error",
}
SPLIT_TITLES = {"eval": "eval return", "train": "train return"}
# Columns of the runs table that identify a run rather than configure it.
RUN_ID_COLUMNS = (
    "task", "variant", "seed", "status", "frames", "config_hash", "diverged_at_frames",
    "latent_error", "sigma2", "lambda", "env.task",
)  # fmt: skip
KEY_HYPERPARAMETERS = (
    "agent.preset", "agent.size", "train.frames", "env.action_repeat", "agent.latent_error.kind",
    "agent.latent_error.sigma2", "agent.jacobian.weight", "agent.imag_horizon",
)  # fmt: skip


# ---------------------------------------------------------------- artifact spec


@dataclass
class Spec:
    """What a Snakemake rule tells an artifact notebook (its ``params``)."""

    artifact: str
    caption: str
    variants: list[str]
    tasks: list[str]
    scale: str
    scale_info: dict = field(default_factory=dict)
    inferred: bool = False
    families: list[str] | None = None
    n_resamples: int = stats.N_RESAMPLES
    bootstrap_seed: int = 0


def spec_from(params: Any) -> Spec:
    """Build a Spec from ``snakemake.params`` (or any object with those attributes)."""
    missing = [k for k in ("artifact", "caption", "variants", "tasks", "scale") if getattr(params, k, None) is None]
    if missing:
        raise ValueError(f"snakemake.params lacks {', '.join(missing)} (see the notebook's first cell)")
    return Spec(
        artifact=str(params.artifact),
        caption=str(params.caption),
        variants=list(params.variants),
        tasks=list(params.tasks),
        scale=str(params.scale),
        scale_info=dict(getattr(params, "scale_info", None) or {}),
        inferred=bool(getattr(params, "inferred", False)),
        families=list(params.families) if getattr(params, "families", None) else None,
        n_resamples=int(getattr(params, "n_resamples", None) or stats.N_RESAMPLES),
        bootstrap_seed=int(getattr(params, "bootstrap_seed", None) or 0),
    )


def _named(ns: Any) -> dict[str, Any]:
    """Named entries of a Snakemake Namedlist or a SimpleNamespace."""
    if hasattr(ns, "keys"):
        return {k: getattr(ns, k) for k in ns.keys()}
    return dict(vars(ns))


def read_inputs(inputs: Any) -> dict[str, pd.DataFrame]:
    """Read the named aggregated tables among ``snakemake.input`` (curves, eval, rollout, jacobian, runs)."""
    named = _named(inputs)
    unknown = sorted(set(named) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown input name(s) {unknown}; expected some of {list(TABLES)}")
    return {name: read_table(path) for name, path in named.items()}


def require(tables: Mapping[str, pd.DataFrame], name: str, artifact: str) -> pd.DataFrame:
    if name not in tables:
        raise ValueError(f"artifact {artifact} needs the input named {name!r}; got {sorted(tables)}")
    return tables[name]


def restrict(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Rows of the artifact's tasks and variants (and families, where the table has them)."""
    out = df[df["task"].isin(spec.tasks) & df["variant"].isin(spec.variants)]
    if spec.families and "family" in out:
        out = out[out["family"].isin([*spec.families, "clean"])]
    return out


# ---------------------------------------------------------------- provenance and captions


def merge_provenance(paths: Iterable[str | Path]) -> dict[str, Any]:
    """The provenance files beside ``paths`` and the union of the git commits their data come from.

    An aggregated table's ``source_commits`` (the commits of the runs it
    collects) stand for it; its own ``git_commit`` (the aggregation code's)
    counts only when it has none.
    """
    inputs, commits = {}, set()
    for path in paths:
        prov_path = Path(str(path) + ".provenance.json")
        prov = json.loads(prov_path.read_text()) if prov_path.exists() else None
        inputs[str(path)] = prov
        if prov:
            commits.update(prov.get("source_commits") or ([prov["git_commit"]] if prov.get("git_commit") else []))
    return {"inputs": inputs, "source_commits": sorted(commits)}


def commit_warning(merged: dict[str, Any], artifact: str) -> str | None:
    """A warning (also issued with warnings.warn) when the inputs come from several commits."""
    commits = merged["source_commits"]
    if len(commits) <= 1:
        return None
    msg = f"Inputs of {artifact} come from {len(commits)} git commits ({', '.join(c[:12] for c in commits)})."
    warnings.warn(msg, stacklevel=2)
    return msg


def plural(n: Any, word: str, many: str | None = None) -> str:
    """'1 seed', '3 seeds' (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _seed_list(info: Mapping[str, Any]) -> list | None:
    seeds = info.get("seeds")
    if seeds is None:
        return None
    return list(seeds) if not isinstance(seeds, int) else list(range(seeds))


def _seeds_text(info: Mapping[str, Any]) -> str:
    seeds = _seed_list(info)
    if seeds is None:
        return ""
    return f"{plural(len(seeds), 'seed')} ({', '.join(map(str, seeds))})"


def scale_text(spec: Spec) -> str:
    info = spec.scale_info
    parts = []
    if info.get("frames") is not None:
        parts.append(f"{_frames_label(float(info['frames']))} env frames per run")
    if _seeds_text(info):
        parts.append(_seeds_text(info))
    if info.get("eval_episodes") is not None:
        episode = plural(int(info["eval_episodes"]), "evaluation episode")
        if info.get("episode_frames") is not None:
            episode += f" of {int(info['episode_frames']):,} env frames"
        parts.append(f"{episode} per condition")
    elif info.get("episode_frames") is not None:
        parts.append(f"evaluation episodes of {int(info['episode_frames']):,} env frames")
    size = info.get("size", info.get("model_size"))
    if size is not None:
        parts.append(f"model size {size}")
    if info.get("preset") is not None:
        parts.append(f"preset {info['preset']}")
    if info.get("render") is not None:
        parts.append(f"{info['render']} rendering")
    return f"Scale `{spec.scale}`" + (": " + ", ".join(parts) if parts else "") + "."


def subtitle_text(spec: Spec) -> str:
    """The line drawn in every figure: 'scale smoke · 1,200 frames · seeds 0, 1 · model tiny (dreamerv2)'."""
    info = spec.scale_info
    parts = [f"scale {spec.scale}"]
    if info.get("frames") is not None:
        parts.append(f"{int(info['frames']):,} frames")
    seeds = _seed_list(info)
    if seeds is not None:
        parts.append(("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds)))
    size = info.get("size", info.get("model_size"))
    if size is not None or info.get("preset") is not None:
        model = "model" + (f" {size}" if size is not None else "")
        parts.append(model + (f" ({info['preset']})" if info.get("preset") is not None else ""))
    if info.get("eval_episodes") is not None:
        ep = plural(int(info["eval_episodes"]), "eval episode")
        if info.get("episode_frames") is not None:
            ep += f" × {int(info['episode_frames']):,} frames"
        parts.append(ep)
    return " · ".join(parts)


def variants_text(spec: Spec, data: pd.DataFrame | None = None) -> str:
    """'Variants: a, b.' naming only variants with rows in ``data`` (per task when the tasks differ)."""
    if data is None or "variant" not in data or data.empty:
        return f"Variants: {', '.join(spec.variants)}."
    per_task = {}
    for task in spec.tasks:
        rows = data[data["task"] == task] if "task" in data else data
        per_task[task] = [v for v in spec.variants if (rows["variant"] == v).any()]
    per_task = {t: vs for t, vs in per_task.items() if vs}
    distinct = {tuple(vs) for vs in per_task.values()}
    if len(distinct) <= 1:
        shown = next(iter(distinct), ())
        return f"Variants: {', '.join(shown) or 'none'}."
    return "Variants: " + "; ".join(f"{t}: {', '.join(vs)}" for t, vs in per_task.items()) + "."


def compose_caption(
    spec: Spec, notes: Iterable[str] = (), warning: str | None = None, data: pd.DataFrame | None = None
) -> str:
    """Markdown caption: the registry's text, scale, seeds, frames, variants, notes, layout and commits.

    With ``data`` (the shown numbers), variants without rows there are left out.
    """
    lines = [
        f"**{spec.artifact}.** {spec.caption.strip()}",
        "",
        scale_text(spec),
        f"Tasks: {', '.join(spec.tasks)}. {variants_text(spec, data)}",
    ]
    lines += [n for n in notes if n]
    if spec.inferred:
        lines.append("The layout of this artifact is inferred (the paper's version is not available).")
    if warning:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines).strip() + "\n"


def interval_note(spec: Spec) -> str:
    return (
        f"Intervals: 95% percentile bootstrap over seeds ({spec.n_resamples} resamples); "
        "diverged runs are excluded from returns and counted separately."
    )


def _write_provenance(output: Any, spec: Spec, inputs: Any, merged: dict[str, Any]) -> None:
    atomic_write_json(
        output.provenance,
        provenance(
            artifact=spec.artifact, scale=spec.scale, scale_info=spec.scale_info, variants=spec.variants,
            tasks=spec.tasks, inferred=spec.inferred, n_resamples=spec.n_resamples, **merged,
        ),
    )  # fmt: skip


def _write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_figure(
    fig, data: pd.DataFrame, output: Any, spec: Spec, inputs: Any, notes: Iterable[str] = (),
    shown: pd.DataFrame | None = None,
) -> str:
    """Write ``output.png``, ``.pdf``, ``.csv`` (the plotted numbers), ``.caption`` and ``.provenance``.

    The caption names the variants with rows in ``shown`` (default ``data``).
    """
    merged = merge_provenance(_named(inputs).values())
    warning = commit_warning(merged, spec.artifact)
    caption = compose_caption(spec, [*notes, interval_note(spec)], warning, data if shown is None else shown)
    for kind in ("png", "pdf"):
        with atomic_path(getattr(output, kind)) as tmp:
            fig.savefig(tmp, format=kind, dpi=150, bbox_inches="tight")
    plt.close(fig)
    _write_csv(data, output.csv)
    atomic_write_text(output.caption, caption)
    _write_provenance(output, spec, inputs, merged)
    return caption


def write_table(
    numbers: pd.DataFrame,
    markdown: str,
    latex: str,
    output: Any,
    spec: Spec,
    inputs: Any,
    notes: Iterable[str] = (),
    interval: bool = True,
    title: str | None = None,
    shown: pd.DataFrame | None = None,
) -> str:
    """Write ``output.csv`` (tidy numbers), ``.md`` (optional title, caption, table), ``.tex``,
    ``.caption`` and ``.provenance``; the caption names the variants with rows in ``shown``
    (default ``numbers``)."""
    merged = merge_provenance(_named(inputs).values())
    notes = [*notes, interval_note(spec)] if interval else list(notes)
    caption = compose_caption(spec, notes, commit_warning(merged, spec.artifact), numbers if shown is None else shown)
    _write_csv(numbers, output.csv)
    atomic_write_text(output.md, (f"# {title}\n\n" if title else "") + f"{caption}\n{markdown}")
    atomic_write_text(output.tex, latex)
    atomic_write_text(output.caption, caption)
    _write_provenance(output, spec, inputs, merged)
    return caption


# ---------------------------------------------------------------- styling


def set_style() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.35)
    plt.rcParams.update({"legend.frameon": False, "axes.titleweight": "bold"})


# Okabe & Ito's colour-blind-safe qualitative palette (yellow left out: too faint on white).
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}  # fmt: skip
# Line styles and markers of variants beyond the colours; ":" and "x" mean a diverged run.
LINESTYLES = ("-", "--", "-.", (0, (5, 1.5, 1, 1.5, 1, 1.5)))
MARKERS = ("o", "s", "^", "D", "v", "P", "*", "h")


@dataclass(frozen=True)
class Style:
    """How one variant is drawn in every figure."""

    color: str
    marker: str
    linestyle: Any


# One style per variant of config/config.yaml, the same in every figure. The variants of each
# registry figure have distinct colours (baseline black; zero drift blues and greens,
# non-zero drift warm colours); variants sharing a colour differ in marker and line style.
VARIANT_STYLES = {
    "baseline": Style(OKABE_ITO["black"], "o", "-"),
    "zd01": Style(OKABE_ITO["bluish green"], "o", "-"),
    "zd1": Style(OKABE_ITO["sky blue"], "o", "-"),
    "zd5": Style(OKABE_ITO["blue"], "o", "-"),
    "zd01_jac": Style(OKABE_ITO["reddish purple"], "s", "--"),
    "zd5_jac": Style(OKABE_ITO["sky blue"], "s", "--"),
    "nzd": Style(OKABE_ITO["vermillion"], "o", "-"),
    "nzd_jac": Style(OKABE_ITO["orange"], "s", "--"),
    "nzd_lam1e-3": Style(OKABE_ITO["reddish purple"], "v", "-."),
    "nzd_lam1e-1": Style(OKABE_ITO["blue"], "^", "-."),
    "nzd_lam1": Style(OKABE_ITO["bluish green"], "D", "-."),
    "aug": Style(OKABE_ITO["sky blue"], "v", "-."),
    "l2dyn": Style(OKABE_ITO["reddish purple"], "^", LINESTYLES[3]),
    "long": Style(OKABE_ITO["vermillion"], "D", "-."),
    "long_jac": Style(OKABE_ITO["orange"], "^", LINESTYLES[3]),
}


def _style_cycle() -> list[Style]:
    """Every (colour, marker, line style), colours varying fastest."""
    colors = list(OKABE_ITO.values())
    return [
        Style(colors[k % len(colors)], MARKERS[k % len(MARKERS)], LINESTYLES[(k // len(colors)) % len(LINESTYLES)])
        for k in range(len(colors) * len(MARKERS) * len(LINESTYLES))
    ]


def variant_styles(variants: Iterable[str]) -> dict[str, Style]:
    """Style of each variant: VARIANT_STYLES for known ones; a variant not listed there gets a
    style chosen from its name (so the same in every figure), moved on to an unused colour (and then
    an unused style) of this figure when that one is taken."""
    variants = list(dict.fromkeys(variants))
    out = {v: VARIANT_STYLES[v] for v in variants if v in VARIANT_STYLES}
    cycle = _style_cycle()
    for v in variants:
        if v in out:
            continue
        start = zlib.crc32(v.encode()) % len(cycle)
        order = cycle[start:] + cycle[:start]
        used_colors = {st.color for st in out.values()}
        used = set(out.values())
        free = [st for st in order if st.color not in used_colors] or [st for st in order if st not in used]
        out[v] = (free or order)[0]
    return {v: out[v] for v in variants}


def palette(variants: list[str]) -> dict[str, str]:
    """Colour of each variant (see variant_styles)."""
    return {v: st.color for v, st in variant_styles(variants).items()}


def _frames_label(x: float) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


FRAMES_FORMAT = FuncFormatter(lambda x, _: _frames_label(x))


def add_subtitle(fig, spec: Spec):
    """Scale, frames, seeds and model in the figure itself (see subtitle_text), above the panels."""
    return fig.suptitle(subtitle_text(spec), fontsize="medium", color="0.25", fontweight="normal")


def _finish(fig, axes, spec: Spec, ncol: int | None = None) -> None:
    add_subtitle(fig, spec)
    _legend_below(fig, axes, ncol)


def _legend_below(fig, axes, ncol: int | None = None) -> None:
    handles, labels = {}, []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if not labels:
        fig.tight_layout()
        return
    labels.sort(key=lambda lab: lab.startswith("diverged run"))  # the marker key goes last
    fig.legend(
        [handles[lab] for lab in labels], labels, loc="lower center", ncol=ncol or min(len(labels), 6),
        bbox_to_anchor=(0.5, -0.01),
    )  # fmt: skip
    legend_inches = 0.25 + 0.3 * math.ceil(len(labels) / (ncol or 6))
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


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
                    ax.plot(s["frames"], s["mean"], lw=2, label=label, **_line_kw(styles[v]))
                    ax.fill_between(s["frames"], s["ci_low"], s["ci_high"], color=styles[v].color, alpha=0.2, lw=0)
                    drew = True
                drew |= _draw_diverged(ax, curves, diverged, task, split, v, styles[v], label)
            if not drew:
                _no_data(ax)
            ax.set_title(f"{task}: {SPLIT_TITLES[split]}")
            ax.set_xlabel("env frames")
            ax.set_ylabel("episode return")
            ax.xaxis.set_major_formatter(FRAMES_FORMAT)
    _finish(fig, axes, spec)
    return fig


def _line_kw(style: Style) -> dict[str, Any]:
    """A variant's line: its colour and line style, its marker every tenth of the axes."""
    return dict(color=style.color, ls=style.linestyle, marker=style.marker, ms=5, markevery=0.1)


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
        ax.plot([], [], lw=2, label=label, **_line_kw(style))
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
    return _order(out, spec)


def _family_order(families: Iterable[str]) -> list[str]:
    fams = [f for f in dict.fromkeys(families) if f != "clean"]
    return sorted(fams, key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER), f))


def _order(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Rows in the spec's task and variant order, then family order (clean first) and level."""
    if df.empty:
        return df
    keys = {
        "_t": df["task"].map({t: i for i, t in enumerate(spec.tasks)}),
        "_v": df["variant"].map({v: i for i, v in enumerate(spec.variants)}),
    }
    if "family" in df:
        rank = {f: i + 1 for i, f in enumerate(_family_order(df["family"]))} | {"clean": 0}
        keys["_f"] = df["family"].map(rank)
    by = [*keys, "level"] if "level" in df else list(keys)
    return df.assign(**keys).sort_values(by).drop(columns=list(keys)).reset_index(drop=True)


def plot_robustness(summary: pd.DataFrame, spec: Spec) -> plt.Figure:
    """Return vs perturbation level, one panel per family (rows: tasks); the clean return at the identity level."""
    set_style()
    styles = variant_styles(spec.variants)
    families = spec.families or _family_order(summary["family"])
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
        drew = False
        for v in spec.variants:
            rows = summary[(summary["task"] == task) & (summary["variant"] == v)]
            clean = rows[rows["family"] == "clean"].assign(level=IDENTITY_LEVEL.get(fam, 0.0))
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
            _no_data(ax)
        ax.set_title(fam if len(spec.tasks) == 1 else f"{task}: {fam}")
        ax.set_xlabel(f"perturbation level ({FAMILY_UNITS.get(fam, fam)})")
        ax.set_ylabel("episode return")
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    _finish(fig, axes, spec)
    return fig


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "–"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}"
    return f"{x:.3g}"


def cell(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return _fmt(mean)
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


def robustness_table(summary: pd.DataFrame, spec: Spec, stat: str = "mean") -> pd.DataFrame:
    """Wide table: rows (task,) variant; columns (family, level), clean first; cells 'mean [low, high]'."""
    lo, hi = ("ci_low", "ci_high") if stat == "mean" else ("iqm_low", "iqm_high")
    text = [cell(m, a, b) for m, a, b in zip(summary[stat], summary[lo], summary[hi])]
    column = [("clean", "") if f == "clean" else (f, f"{lv:g}") for f, lv in zip(summary["family"], summary["level"])]
    s = summary.assign(text=text, column=column)
    columns = list(dict.fromkeys(s["column"]))
    wide = s.pivot_table(index=["task", "variant"], columns="column", values="text", aggfunc="first", sort=False)
    wide = wide.reindex(columns=columns)
    seeds = summary.groupby(["task", "variant"], sort=False).agg(n=("n_seeds", "max"), d=("n_diverged", "max"))
    seeds_text = [f"{n}" + (f" (+{d} diverged)" if d else "") for n, d in seeds.loc[wide.index].to_numpy()]
    wide.insert(0, ("seeds", ""), seeds_text)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    wide = wide.reset_index()
    if len(spec.tasks) == 1:
        wide = wide.drop(columns="task", level=0)
    return wide.fillna("–")


# ---------------------------------------------------------------- markdown and LaTeX writers


def _header_labels(df: pd.DataFrame) -> list[str]:
    if isinstance(df.columns, pd.MultiIndex):
        return [" ".join(str(p) for p in col if str(p)) for col in df.columns]
    return [str(c) for c in df.columns]


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a frame of strings (MultiIndex columns joined with spaces)."""
    head = _header_labels(df)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in df.astype(str).itertuples(index=False):
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


_TEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--"}  # fmt: skip


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in str(text))


def tex_markdown(text: str) -> str:
    """LaTeX of a line of Markdown: `code` as \\texttt, **bold** as \\textbf, the rest escaped;
    a lone backtick is dropped."""
    out = []
    for k, part in enumerate(re.split(r"`([^`]*)`", str(text))):
        if k % 2:
            out.append(rf"\texttt{{{tex_escape(part)}}}")
            continue
        for j, piece in enumerate(re.split(r"\*\*(.+?)\*\*", part.replace("`", ""))):
            out.append(rf"\textbf{{{tex_escape(piece)}}}" if j % 2 else tex_escape(piece))
    return "".join(out)


def latex_table(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (two header rows for MultiIndex columns), resized to the text width."""
    ncol = len(df.columns)
    lines = [
        r"\begin{table*}[t]", r"\centering", rf"\caption{{{tex_markdown(caption)}}}", rf"\label{{tab:{label}}}",
        r"\resizebox{\textwidth}{!}{%", rf"\begin{{tabular}}{{{'l' * ncol}}}", r"\toprule",
    ]  # fmt: skip
    if isinstance(df.columns, pd.MultiIndex):
        top, spans = [], []
        cols = list(df.columns)
        i = 0
        while i < ncol:
            j = i
            while j + 1 < ncol and cols[j + 1][0] == cols[i][0] and str(cols[i][1]):
                j += 1
            name = tex_escape(cols[i][0])
            top.append(rf"\multicolumn{{{j - i + 1}}}{{c}}{{{name}}}" if j > i else name)
            if j > i:
                spans.append(rf"\cmidrule(lr){{{i + 1}-{j + 1}}}")
            i = j + 1
        lines.append(" & ".join(top) + r" \\")
        lines += spans
        lines.append(" & ".join(tex_escape(c[1]) for c in cols) + r" \\")
    else:
        lines.append(" & ".join(tex_escape(c) for c in df.columns) + r" \\")
    lines.append(r"\midrule")
    for row in df.astype(str).itertuples(index=False):
        lines.append(" & ".join(tex_markdown(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


def short_caption(spec: Spec) -> str:
    return f"{spec.caption.strip()} {scale_text(spec)}"


def robustness_markdown(summary: pd.DataFrame, spec: Spec) -> tuple[str, str, list[str]]:
    """Markdown and LaTeX of a robustness table: means, plus IQMs where every cell has >= 4 seeds."""
    if summary.empty:
        return "No evaluation rows for these tasks and variants.\n", "% no data\n", []
    mean_wide = robustness_table(summary, spec, "mean")
    md = "Mean episode return [95% bootstrap interval]:\n\n" + markdown_table(mean_wide)
    tex = latex_table(mean_wide, short_caption(spec) + " Mean [95% CI].", spec.artifact)
    notes = []
    if not summary.empty and summary["n_seeds"].min() >= stats.IQM_MIN_SEEDS:
        iqm_wide = robustness_table(summary, spec, "iqm")
        md += "\nInterquartile mean [95% bootstrap interval]:\n\n" + markdown_table(iqm_wide)
        tex += latex_table(iqm_wide, short_caption(spec) + " IQM [95% CI].", spec.artifact + "_iqm")
    else:
        notes.append(f"IQM not shown: some cells have fewer than {stats.IQM_MIN_SEEDS} seeds.")
    return md, tex, notes


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
            drew = False
            for v in spec.variants:
                s = summary[(summary["task"] == task) & (summary["metric"] == metric) & (summary["variant"] == v)]
                s = s[s["mean"] > 0]
                if s.empty:
                    continue
                ax.plot(s["horizon"], s["mean"], lw=2, label=v, **_line_kw(styles[v]))
                ax.fill_between(s["horizon"], s["ci_low"], s["ci_high"], color=styles[v].color, alpha=0.2, lw=0)
                drew = True
            if drew:
                ax.set_yscale("log")
            else:
                _no_data(ax)
            ax.set_title(f"{task}: {ROLLOUT_METRICS[metric]}")
            ax.set_xlabel("open-loop horizon (steps)")
            ax.set_ylabel(f"{ROLLOUT_METRICS[metric]} (log)")
    _finish(fig, axes, spec)
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
                _no_data(ax)
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
                    ax.axhspan(r["ci_low"], r["ci_high"], color=color, alpha=0.15, lw=0)
                ax.set_xscale("log")
            ax.set_title(f"{task}: {statistic}")
            ax.set_xlabel(r"Jacobian regularization weight $\lambda$ (log)")
            ax.set_ylabel("episode return")
    _finish(fig, axes, spec, ncol=3)
    return fig


# ---------------------------------------------------------------- hyperparameters


def _joined(values: pd.Series) -> str:
    uniq = list(dict.fromkeys(_scalar(v) for v in values))
    return " / ".join(uniq)


def _scalar(v: Any) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):
        return "(" + ", ".join(_scalar(x) for x in v) + ")"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def hyperparameter_table(runs: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """One row per (task, variant): seeds, diverged runs, the key hyperparameters and every one that varies."""
    runs = restrict(runs, spec)
    params = [c for c in runs.columns if c not in RUN_ID_COLUMNS and c != "seed"]
    rows = []
    for (task, variant), g in runs.groupby(["task", "variant"], sort=False):
        row = {"task": task, "variant": variant, "seeds": ", ".join(map(str, sorted(g["seed"].unique())))}
        row["diverged"] = str(int((g["status"] == "diverged").sum())) if "status" in g else "–"
        row.update({p: _joined(g[p]) for p in params})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    varying = [p for p in params if table[p].nunique() > 1]
    shown = [p for p in KEY_HYPERPARAMETERS if p in params] + [p for p in varying if p not in KEY_HYPERPARAMETERS]
    table = _order(table, spec)
    return table[["task", "variant", "seeds", "diverged", *shown]]


# ---------------------------------------------------------------- claims report


def claims_report(table: pd.DataFrame, spec: Spec) -> str:
    """Body of claims.md: the decision rule, then per claim its statement and one line per effect."""
    lines = [
        "Decision rule (docs/protocol.md section 1): the effect's 95% percentile bootstrap interval over seeds "
        f"({spec.n_resamples} resamples) entirely on the claimed side of 0 means **supported**, entirely on "
        "the other side **contradicted**, otherwise **inconclusive**; fewer than "
        f"{stats.MIN_SEEDS} seeds on a side is inconclusive. Effects are `a - b` over seeds, paired by seed "
        "when both sides have the same seeds. Diverged runs are excluded from returns, frames and errors and "
        "counted in the divergence rate. `P(claimed)` is the probability that a seed of `a` lies on the "
        "claimed side of a seed of `b` (ties count half), with its interval. Rows marked *beside* are "
        "reported for context (other levels); the verdicts of the others decide.",
        "",
    ]
    for claim, statement in claims.STATEMENTS.items():
        rows = table[table["claim"] == claim]
        lines += [f"## {claim}: {statement}", ""]
        verdicts = rows.loc[rows["primary"].astype(bool), "verdict"].value_counts()
        if not verdicts.empty:
            lines += ["Primary effects: " + ", ".join(f"{n} {v}" for v, n in verdicts.items()) + ".", ""]
        lines.append(markdown_table(claims_display(rows)))
    return "\n".join(lines)


def claims_display(table: pd.DataFrame) -> pd.DataFrame:
    """The claims table as strings for Markdown / LaTeX."""

    def seeds(a, b):
        return "–" if not np.isfinite(a) else f"{int(a)} vs {int(b)}"

    return pd.DataFrame({
        "claim": table["claim"],
        "task": table["task"],
        "statistic": table["statistic"] + np.where(table["primary"].astype(bool), "", " (beside)"),
        "a - b": table["comparison"],
        "claimed": table["claimed_side"] + " 0",
        "effect [95% CI]": [cell(m, a, b) for m, a, b in zip(table["effect"], table["ci_low"], table["ci_high"])],
        "seeds": [seeds(a, b) for a, b in zip(table["n_seeds_a"].astype(float), table["n_seeds_b"].astype(float))],
        "P(claimed) [95% CI]": [
            cell(m, a, b) for m, a, b in zip(table["p_claimed"], table["p_claimed_low"], table["p_claimed_high"])
        ],
        "verdict": table["verdict"],
        "note": table["note"].fillna(""),
    })  # fmt: skip


# ---------------------------------------------------------------- caption notes


def seeds_note(table: pd.DataFrame, spec: Spec) -> str:
    """'Seeds per variant: baseline 3, nzd 3 (1 diverged)', per task when there are several."""
    t = restrict(table, spec)
    parts = []
    for task in spec.tasks:
        items = []
        for v in spec.variants:
            rows = t[(t["task"] == task) & (t["variant"] == v)]
            if rows.empty:  # a variant this task does not use is left out
                continue
            n_div = rows.loc[rows["status"] == "diverged", "seed"].nunique() if "status" in rows else 0
            items.append(f"{v} {rows['seed'].nunique()}" + (f" ({n_div} diverged)" if n_div else ""))
        if items:
            parts.append((f"{task}: " if len(spec.tasks) > 1 else "") + ", ".join(items))
    return "Seeds per variant: " + ("; ".join(parts) or "none") + "."


def diverged_note(diverged: pd.DataFrame, spec: Spec) -> str:
    d = diverged[diverged["variant"].isin(spec.variants) & diverged["task"].isin(spec.tasks)]
    if d.empty:
        return "No run diverged."
    runs = ", ".join(
        f"{r.variant} seed {r.seed} at {_frames_label(float(r.frames))} frames" for r in d.itertuples()
    )
    return (
        f"Diverged runs (dotted, x at the last logged return before divergence; excluded from the mean): {runs}."
    )


def jacobian_note(jacobian: pd.DataFrame | None, spec: Spec) -> str:
    """Mean transition-Jacobian norms per variant (held-out states), for the rollout caption."""
    if jacobian is None:
        return ""
    j = restrict(jacobian, spec)
    j = j[(j["status"] != "diverged") & np.isfinite(j["value"].astype(float))] if "status" in j else j
    if j.empty:
        return ""
    per = stats.per_seed(j, ["task", "norm", "variant"], "value").groupby(["task", "norm", "variant"], sort=False)
    text = [f"{t} {v} {n} {_fmt(x)}" for (t, n, v), x in per["value"].mean().items()]
    return "Transition Jacobian norms on held-out states (mean over seeds): " + "; ".join(text) + "."
