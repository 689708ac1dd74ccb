"""Shipped results: ``cache/<scale>/``, the tidy per-run results a scale's artifacts are
built from, so that a fresh clone rebuilds them without training anything.

The cache mirrors ``results/<scale>/``, keyed by run identity like it
(``runs/<task>/<variant>/seed<k>-<run id>/``, ``eval/...``, ``rollout/...``: see
``Experiment.result_file``), but holds
only what the aggregated tables read: each run's config, status and metrics, its
evaluation table, and its rollout and Jacobian tables, each with its provenance; and each
baseline's held-out episodes, which the rollouts of every variant read (a few hundred KB:
with them a clone adds a variant or finishes a partial grid without training a shipped
baseline again). No model, replay or checkpoint. The workflow reads a result from the cache only
while ``results/<scale>/`` lacks it (``result_path``), so a user's own run always wins, and a
changed config, being a new run id, is never served from the cache.

    wmrobust cache --scale local      # results/local -> cache/local, the grid's finished runs
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from wmrobust import rundir
from wmrobust.experiment import Experiment, GridRun
from wmrobust.results import RESULT_KINDS


def run_files(exp: Experiment, run: GridRun, kinds: set[str]) -> list[str]:
    """Paths (relative to a scale's folder) of what the cache holds for a run of whose
    results the grid reads ``kinds`` (wmrobust.results: curves, runs, eval, ..., heldout)."""
    stages = {RESULT_KINDS[k].stage for k in kinds}
    # Every file of a stage the kinds need: one job writes them together (rollout, jacobian).
    stored = [kind for kind in RESULT_KINDS.values() if kind.file and kind.stage in stages]
    tables = [f"runs/{run.path}/{rundir.METRICS}"] + [exp.result_file(k.name, run) for k in stored if k.source]
    episodes = [exp.result_file(k.name, run) for k in stored if not k.source]  # no table, no provenance
    return ([f"runs/{run.path}/{rundir.CONFIG}", f"runs/{run.path}/{rundir.STATUS}"]
            + tables + [f"{t}.provenance.json" for t in tables] + episodes)


def run_kinds(exp: Experiment) -> dict[GridRun, set[str]]:
    """Every run of the grid with the kinds of result the grid reads from it: the sources
    its artifacts aggregate, and for a baseline the held-out episodes rollouts read."""
    needed: dict[GridRun, set[str]] = {}
    for artifact in exp.artifact_ids:
        for run in exp.artifact_runs(artifact):
            needed.setdefault(run, set()).update(exp.artifact_sources(artifact))
    for run in exp.stage_runs("rollout", exp.artifact_ids):
        needed.setdefault(exp.heldout_run(run.task, run.seed), set()).add("heldout")
    return needed


def result_path(results: str, cache: str, relative: str, use_cache: bool = True) -> str:
    """Where the workflow reads ``relative``: the user's ``results/<scale>/`` file, or the
    shipped one while the user has none."""
    own, cached = f"{results}/{relative}", f"{cache}/{relative}"
    if use_cache and not Path(own).exists() and Path(cached).exists():
        return cached
    return own


def export(exp: Experiment, results: Path, cache: Path) -> tuple[list[GridRun], list[GridRun]]:
    """Copy the results of every finished run of ``exp``'s grid from ``results`` into
    ``cache``; returns (exported runs, runs left out because their results are incomplete).

    A run goes in whole or not at all: every file of ``run_files`` must exist (the run
    trained to the end and was evaluated and rolled out). Each file is copied to a
    temporary name and renamed, so an interrupted export leaves no half-written table."""
    done, missing = [], []
    for run, kinds in run_kinds(exp).items():
        files = run_files(exp, run, kinds)
        if rundir.state(results / "runs" / run.path)["state"] not in rundir.ENDED or not all(
            (results / f).exists() for f in files
        ):
            missing.append(run)
            continue
        for relative in files:
            dest = cache / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_name(dest.name + ".partial")
            shutil.copyfile(results / relative, partial)
            partial.replace(dest)
        done.append(run)
    return done, missing


def cli(command: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"wmrobust {command}",
        description="Copy the finished runs of a scale's grid from results/<scale>/ into the shipped "
                    "cache/<scale>/ (config, status, metrics, evaluation, rollout and Jacobian tables "
                    "with their provenance; no models).")
    parser.add_argument("--config", default="config/config.yaml", help="experiment config (default: %(default)s)")
    parser.add_argument("--scale", help="scale to export (default: the config's)")
    parser.add_argument("--results", default="results", help="results root, one folder per scale (default: %(default)s)")
    parser.add_argument("--cache", default="cache", help="cache root, one folder per scale (default: %(default)s)")
    args = parser.parse_args(argv)
    exp = Experiment.from_file(args.config, **({"scale": args.scale} if args.scale else {}))
    scale = exp.scale_name
    done, missing = export(exp, Path(args.results) / scale, Path(args.cache) / scale)
    print(f"{len(done)} of {len(done) + len(missing)} runs of scale {scale!r} in {args.cache}/{scale}/")
    for run in missing:
        print(f"  not exported (not finished, evaluated and rolled out): {run.path}")
    return 0 if not missing else 1
