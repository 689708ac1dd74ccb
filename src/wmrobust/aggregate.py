"""Gather per-run results into the tidy tables an artifact reads.

Sources (see config/README.md): `curves` and `runs` from run directories,
`eval`, `rollout` and `jacobian` by concatenating per-run tables. Each output
carries provenance listing the git commits its inputs were produced by; a
mix of commits is warned about here and again in the artifact's caption.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from wmrobust.config import flatten, to_dict
from wmrobust.io import provenance_path, read_table, write_table
from wmrobust.results import RESULT_KINDS
from wmrobust.rundir import METRICS, STATUS, load_trained, read_status, run_path


def run_rows(run_dir: Path, variant: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """A run's summary row (identity, status, every hyperparameter) and its training curve."""
    run = load_trained(run_dir)
    cfg, status = run.cfg, run.status
    identity = cfg.id_columns(variant)
    diverged_at = status.get("diverged_at") or {}
    summary = {
        **identity,
        "status": status["status"],
        "frames": status.get("frames"),
        "config_hash": status.get("config_hash", cfg.hash()),
        "diverged_at_frames": diverged_at.get("frames"),
        # parquet columns hold scalars: ranges such as mu_range become JSON text
        **{k: json.dumps(v) if isinstance(v, list) else v for k, v in flatten(to_dict(cfg)).items()},
    }
    metrics = read_table(run_dir / METRICS)
    curve = metrics.loc[metrics["split"].isin(["train", "eval"]), ["frames", "split", "return"]]
    curve = curve.assign(**identity, status=status["status"])
    return summary, curve[list(identity) + ["frames", "split", "return", "status"]]


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance beside a table (None if it has none), or a ValueError naming a corrupt one."""
    meta = provenance_path(path)
    try:
        data = json.loads(meta.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        data = err
    if not isinstance(data, dict):
        raise ValueError(f"{meta}: not a valid JSON object ({data}); delete it and rerun the job that writes it")
    return data


def check_producer(path: Path, rid: str) -> None:
    """Refuse a per-run table whose provenance names another run than ``rid`` (or none)."""
    meta = read_provenance(path)
    if meta is None:
        raise ValueError(f"{provenance_path(path)}: missing, so {path.name} cannot be traced to run {rid}; "
                         f"delete {path} and rerun the job that writes it")
    produced_by = meta.get("config_hash")
    if produced_by != rid:
        raise ValueError(f"{path}: its provenance says run {produced_by!r} produced it, not run {rid}; "
                         f"delete it and rerun the job that writes it")


def _commits(paths: list[Path]) -> list[str]:
    """Git commits recorded beside (tables) or inside (status.json) the inputs."""
    commits = set()
    for path in paths:
        meta = (read_status(path.parent) if path.name == STATUS else read_provenance(path)) or {}
        if meta.get("git_commit"):
            commits.add(meta["git_commit"])
    return sorted(commits)


def aggregate(
    source: str, inputs: list[str | Path], runs: list[dict[str, Any]], out: str | Path, scale: str
) -> pd.DataFrame:
    """Build the `source` table of an artifact from its inputs (ordered as ``runs``)."""
    paths = [Path(p) for p in inputs]
    if RESULT_KINDS[source].file is None:  # read from the run directories
        run_dirs = [p.parent for p in paths if p.name == STATUS]
        if len(run_dirs) != len(runs):
            raise ValueError(f"aggregate {source}: {len(run_dirs)} run directories for {len(runs)} runs")
        rows = [run_rows(d, r["variant"]) for d, r in zip(run_dirs, runs)]
        if source == "runs":
            table = pd.DataFrame([summary for summary, _ in rows])
        else:
            table = pd.concat([curve for _, curve in rows], ignore_index=True)
    else:
        if len(paths) != len(runs):
            raise ValueError(f"aggregate {source}: {len(paths)} tables for {len(runs)} runs")
        for path, run in zip(paths, runs):
            check_producer(path, run["rid"])
        table = pd.concat([read_table(p) for p in paths], ignore_index=True)
    commits = _commits(paths)
    if len(commits) > 1:
        warnings.warn(f"{out}: inputs come from {len(commits)} git commits: {', '.join(commits)}")
    # The artifact's provenance embeds this, so it names every run (and so config hash) behind it.
    write_table(table, out, scale=scale, source=source, source_commits=commits,
                runs=[run_path(r["task"], r["variant"], r["seed"], r["rid"]) for r in runs])
    return table
