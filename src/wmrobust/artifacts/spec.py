"""What an artifact notebook is told, reads and writes: the Spec, inputs, provenance, captions.

``spec_from`` / ``read_inputs`` / ``require`` take a Snakemake rule's params and
named inputs, ``restrict`` / ``spec_order`` keep and order the rows of the
artifact's tasks and variants, the caption helpers (``scale_text``,
``subtitle_text``, ``variants_text``, ``compose_caption``, ``short_caption``)
say what an artifact shows, and ``write_figure`` / ``write_table`` write the
files a rule declares, with the caption and the merged provenance of the inputs.
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import matplotlib.pyplot as plt
import pandas as pd

from wmrobust import stats
from wmrobust.io import atomic_path, atomic_write_json, atomic_write_text, provenance, read_table
from wmrobust.perturb.families import family_rank
from wmrobust.results import sources


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
    sources: list[str] = field(default_factory=list)
    """The aggregated tables it reads: its captions state those tables' episodes."""
    left_out: list[str] = field(default_factory=list)
    """Variants it declares that this scale does not run: its caption names them."""
    n_resamples: int = stats.N_RESAMPLES
    bootstrap_seed: int = 0
    min_seeds: int = stats.MIN_SEEDS


def task_names(tasks: Iterable[str]) -> str:
    """What a caption's ``{task}`` reads: 'Walker walk', 'Walker walk and Finger spin'."""
    return " and ".join(task.replace("_", " ").capitalize() for task in tasks)


def spec_from(params: Any) -> Spec:
    """Build a Spec from ``snakemake.params`` (or any object with those attributes)."""
    missing = [k for k in ("artifact", "caption", "variants", "tasks", "scale") if getattr(params, k, None) is None]
    if missing:
        raise ValueError(f"snakemake.params lacks {', '.join(missing)} (see the notebook's first cell)")
    return Spec(
        artifact=str(params.artifact),
        caption=str(params.caption).replace("{task}", task_names(params.tasks)),
        variants=list(params.variants),
        tasks=list(params.tasks),
        scale=str(params.scale),
        scale_info=dict(getattr(params, "scale_info", None) or {}),
        inferred=bool(getattr(params, "inferred", False)),
        families=list(params.families) if getattr(params, "families", None) else None,
        sources=list(getattr(params, "sources", None) or []),
        left_out=list(getattr(params, "left_out", None) or []),
        n_resamples=int(getattr(params, "n_resamples", None) or stats.N_RESAMPLES),
        bootstrap_seed=int(getattr(params, "bootstrap_seed", None) or 0),
        min_seeds=int(getattr(params, "min_seeds", None) or stats.MIN_SEEDS),
    )


def notebook_spec(sm: Any) -> Spec:
    """The Spec of a notebook that Snakemake's ``script:`` runs (``sm`` is its ``snakemake``),
    with what the notebook prints and warns written to the rule's ``log:``."""
    spec = spec_from(sm.params)
    if getattr(sm, "log", None):
        sys.stdout = sys.stderr = open(sm.log[0], "w", buffering=1)
        print(f"{spec.artifact} ({spec.scale} scale) from {', '.join(_named(sm.input))}")
    return spec


def _named(ns: Any) -> dict[str, Any]:
    """Named entries of a Snakemake Namedlist or a SimpleNamespace."""
    if hasattr(ns, "keys"):
        return {k: getattr(ns, k) for k in ns.keys()}
    return dict(vars(ns))


def read_inputs(inputs: Any) -> dict[str, pd.DataFrame]:
    """Read the named aggregated tables among ``snakemake.input`` (curves, eval, rollout, jacobian, runs)."""
    named = _named(inputs)
    unknown = sorted(set(named) - set(sources()))
    if unknown:
        raise ValueError(f"unknown input name(s) {unknown}; expected some of {sources()}")
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


def family_order(families: Iterable[str]) -> list[str]:
    return sorted((f for f in dict.fromkeys(families) if f != "clean"), key=family_rank)


def spec_order(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Rows in the spec's task and variant order, then family order (clean first) and level."""
    if df.empty:
        return df
    keys = {
        "_t": df["task"].map({t: i for i, t in enumerate(spec.tasks)}),
        "_v": df["variant"].map({v: i for i, v in enumerate(spec.variants)}),
    }
    if "family" in df:
        rank = {f: i + 1 for i, f in enumerate(family_order(df["family"]))} | {"clean": 0}
        keys["_f"] = df["family"].map(rank)
    by = [*keys, "level"] if "level" in df else list(keys)
    return df.assign(**keys).sort_values(by).drop(columns=list(keys)).reset_index(drop=True)


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


def frames_label(x: float) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


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
        parts.append(f"{frames_label(float(info['frames']))} env frames per run")
    if _seeds_text(info):
        parts.append(_seeds_text(info))
    parts += episodes_text(spec, short=False)
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
    return " · ".join(parts + episodes_text(spec, short=True))


def episodes_text(spec: Spec, short: bool) -> list[str]:
    """The episodes behind the artifact's own tables (``scale_info['episodes']``): the final
    evaluation's (eval), the periodic evaluations during training (curves), the held-out
    episodes of the open-loop rollouts (rollout, jacobian)."""
    episodes = spec.scale_info.get("episodes") or {}
    texts = []
    for source in dict.fromkeys("rollout" if s == "jacobian" else s for s in spec.sources):
        if source not in episodes:
            continue
        n, frames, every = episodes[source]["episodes"], episodes[source]["frames"], episodes[source].get("every")
        if short:
            kind = "held-out episode" if source == "rollout" else "eval episode"
            text = f"{plural(n, kind)} × {frames:,} frames"
            texts.append(f"curves: {text} every {every:,}" if source == "curves" else text)
        elif source == "curves":
            texts.append(f"learning curves from {plural(n, 'evaluation episode')} of {frames:,} env frames "
                         f"every {every:,} env frames")
        elif source == "rollout":
            texts.append(f"{plural(n, 'held-out episode')} of {frames:,} env frames")
        else:
            texts.append(f"{plural(n, 'evaluation episode')} of {frames:,} env frames per condition")
    return texts


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
    if spec.left_out:
        lines.append(f"Not shown: {', '.join(spec.left_out)}, which the {spec.scale} scale does not run "
                     f"(`scales.{spec.scale}.variants`).")
    lines += [n for n in notes if n]
    if spec.inferred:
        lines.append("The layout of this artifact is inferred (the paper's version is not available).")
    if warning:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines).strip() + "\n"


def short_caption(spec: Spec) -> str:
    return f"{spec.caption.strip()} {scale_text(spec)}"


def interval_note(spec: Spec) -> str:
    return (
        f"Intervals: 95% percentile bootstrap over seeds ({spec.n_resamples} resamples); "
        "diverged runs are excluded from returns and counted separately."
    )


# ---------------------------------------------------------------- writers


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
    shown: pd.DataFrame | None = None, interval: bool = True,
) -> str:
    """Write ``output.png``, ``.pdf``, ``.csv`` (the plotted numbers), ``.caption`` and ``.provenance``.

    The caption names the variants with rows in ``shown`` (default ``data``), and how the
    intervals are computed where the figure draws them (``interval``).
    """
    merged = merge_provenance(_named(inputs).values())
    warning = commit_warning(merged, spec.artifact)
    notes = [*notes, interval_note(spec)] if interval else list(notes)
    caption = compose_caption(spec, notes, warning, data if shown is None else shown)
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
