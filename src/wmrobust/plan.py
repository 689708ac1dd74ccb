"""Know before you launch: `wmrobust plan` (jobs, compute, disk of a scale) and
`wmrobust status` (what the runs on disk are doing)."""

from __future__ import annotations

import argparse
import csv
import os
from collections import Counter
from pathlib import Path
from typing import Any

from wmrobust import rundir
from wmrobust.config import ConfigError
from wmrobust.experiment import Experiment


def job_counts(exp: Experiment, artifacts: list[str], targets: list[str] = ("figures",)) -> Counter:
    """Jobs per rule to build ``artifacts`` from nothing, as Snakemake counts them when asked
    for ``targets`` (its target rules count one job each)."""
    runs = {r for a in artifacts for r in exp.artifact_runs(a)}
    rollout = exp.stage_runs("rollout", artifacts)
    counts = Counter(
        train=len(runs | {exp.heldout_run(r.task, r.seed) for r in rollout}),
        evaluate=len(exp.stage_runs("evaluate", artifacts)),
        collect=len({(r.task, r.seed) for r in rollout}),
        rollout=len(rollout),
        aggregate=sum(len(exp.artifact_sources(a)) for a in artifacts),
    )
    counts.update(f"artifact_{exp.artifact_output_kind(a)}" for a in artifacts)
    counts.update(targets)
    return +counts


def measured_seconds(results: Path, rule: str) -> float | None:
    """Mean wall seconds of a rule's finished jobs, from Snakemake's benchmark files."""
    seconds = []
    for path in (results / "benchmarks" / rule).rglob("*.tsv"):
        with path.open() as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        seconds += [float(row["s"]) for row in rows if row.get("s")]
    return sum(seconds) / len(seconds) if seconds else None


def job_threads(exp: Experiment, rule: str) -> int:
    """The CPUs a job of ``rule`` asks for: a train job its run's train.threads (the train rule's
    ``threads``), any other the scale's resources."""
    threads = exp.resources(rule).get("threads", 1)
    if rule == "train":
        first = exp.runs[0]
        threads = exp.run_config(first.task, first.variant, first.seed).train.threads or threads
    return int(threads)


def estimate(exp: Experiment, counts: Counter, results: Path, run_hours: float | None = None) -> list[dict[str, Any]]:
    """Per-rule job counts with hours and disk: the mean of this scale's finished jobs where
    Snakemake's benchmark files exist (measured), else the scale's `estimates` block (a guess).
    A train job is measured by ``run_hours``, the mean core-hours of the finished runs
    (grid_progress): a resumed job's benchmark times its last part only.
    A job holds its CPUs, and a train job on a GPU its GPU too, for its hours."""
    est = exp.scale.get("estimates") or {}
    rows = []
    for rule, n in counts.items():
        per_job = est.get(rule, {})
        if rule == "train":
            measured = None if run_hours is None else run_hours * 3600 / job_threads(exp, rule)
        else:
            measured = measured_seconds(results, rule)
        seconds = measured if measured is not None else float(per_job.get("seconds", 0.0))
        gpu = rule == "train" and exp.resources("train").get("gpu", 0) > 0
        basis = ("measured" if measured is not None else "guessed (scales.<scale>.estimates)" if per_job
                 else "not estimated")
        rows.append(
            {
                "rule": rule,
                "jobs": n,
                "hours_per_job": seconds / 3600,
                "cpu_hours": n * seconds / 3600 * job_threads(exp, rule),
                "gpu_hours": n * seconds / 3600 if gpu else 0.0,
                "disk_gb": n * float(per_job.get("disk_mb", 0.0)) / 1024,
                "basis": basis,
            }
        )
    return rows


def training_hours(run_dir: Path, threads: int) -> float:
    """Core-hours a run has trained so far: the CPU time its status records, else (runs from
    before that was recorded) its logged wall time, summed over sessions, x threads."""
    import pandas as pd

    try:
        cpu = (rundir.read_status(run_dir) or {}).get("cpu_seconds")
    except rundir.RunError:
        cpu = None
    if isinstance(cpu, (int, float)):
        return cpu / 3600
    metrics = run_dir / "metrics.parquet"
    if not metrics.exists():
        return 0.0
    wall = pd.read_parquet(metrics, columns=["wall_time"])["wall_time"].max()
    return 0.0 if pd.isna(wall) else float(wall) / 3600 * max(threads, 1)


def grid_progress(exp: Experiment, runs: list, results: Path, cache: Path) -> dict[str, Any]:
    """Each run's state (rundir.state in ``results``; ``cached`` when only the shipped cache has it
    finished; ``to do`` when neither has it), the core-hours trained so far, and an estimate of
    those left: a finished run's mean (else the scale's estimate) for each run to do, and for
    each unfinished one the part of that mean its frames have not yet covered."""
    states, spent, per_run = {}, 0.0, []
    for run in runs:
        cfg = exp.run_config(run.task, run.variant, run.seed)
        run_dir = results / "runs" / run.path
        if run_dir.is_dir():
            state = rundir.state(run_dir)
            hours = training_hours(run_dir, cfg.train.threads)
        elif (cache / "runs" / run.path / rundir.STATUS).exists():
            state = rundir.state(cache / "runs" / run.path)
            state["state"] = "cached"
            hours = training_hours(cache / "runs" / run.path, cfg.train.threads)
        else:
            state, hours = {"state": "to do", "frames": 0}, 0.0
        states[run] = {**state, "hours": hours, "total_frames": cfg.train.frames}
        spent += hours
        if state["state"] in ("finished", "cached"):
            per_run.append(hours)
    guess = float((exp.scale.get("estimates") or {}).get("train", {}).get("seconds", 0.0)) / 3600
    mean = sum(per_run) / len(per_run) if per_run else guess
    left = sum(mean * (1 - (s["frames"] or 0) / s["total_frames"]) for s in states.values()
               if s["state"] not in ("finished", "cached", "diverged"))
    return {"states": states, "spent": spent, "left": left, "per_run": mean, "finished": len(per_run),
            "basis": f"measured over {len(per_run)} finished runs" if per_run else "the scale's estimate"}


def format_progress(progress: dict[str, Any], cores: int) -> str:
    counts = Counter(s["state"] for s in progress["states"].values())
    return "\n".join([
        "grid progress: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())),
        f"training: {progress['spent']:.1f} core-hours so far; about {progress['left']:.1f} left "
        f"({progress['left'] / cores:.1f} h on {cores} cores; {progress['per_run'] * 60:.0f} core-minutes a run, "
        f"{progress['basis']})",
    ])  # fmt: skip


def format_plan(exp: Experiment, artifacts: list[str], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"scale {exp.scale_name}: {exp.scale.get('description', '')}",
        f"tasks {', '.join(exp.tasks)}; seeds {exp.seeds}; {len(artifacts)} artifacts: {', '.join(artifacts)}",
        "",
        f"{'rule':<16} {'jobs':>6} {'h/job':>8} {'CPU h':>9} {'GPU h':>9} {'disk GB':>9}  basis",
    ]
    for r in rows:
        lines.append(
            f"{r['rule']:<16} {r['jobs']:>6} {r['hours_per_job']:>8.3f} {r['cpu_hours']:>9.1f} "
            f"{r['gpu_hours']:>9.1f} {r['disk_gb']:>9.2f}  {r['basis']}"
        )
    total = {k: sum(r[k] for r in rows) for k in ("jobs", "cpu_hours", "gpu_hours", "disk_gb")}
    lines.append(
        f"{'total':<16} {total['jobs']:>6} {'':>8} {total['cpu_hours']:>9.1f} "
        f"{total['gpu_hours']:>9.1f} {total['disk_gb']:>9.2f}"
    )
    return "\n".join(lines)


def find_runs(path: Path) -> list[dict[str, Any]]:
    """Runs under ``path``: a results root (``<scale>/runs/...``), one scale's folder, or
    any folder holding run directories (a run directory holds config.yaml)."""
    if (path / "runs").is_dir():
        return [{"scale": path.name, **row} for row in rundir.scan(path / "runs")]
    scales = sorted(p for p in path.glob("*") if (p / "runs").is_dir())
    if scales:
        return [{"scale": p.name, **row} for p in scales for row in rundir.scan(p / "runs")]
    rows = []
    for config in sorted(path.rglob(rundir.CONFIG)):
        run_dir = config.parent
        rows.append({"scale": "", "path": str(run_dir), **rundir.state(run_dir)})
    return rows


def cli(command: str, argv: list[str]) -> int:
    what = {"plan": "Jobs, compute and disk of a scale (or of some of its artifacts), before launching; "
                    "lists the runs with their ids.",
            "status": "What the runs on disk are doing: finished, diverged, stopped, running, resumable "
                      "or failed, with each run's id."}[command]
    parser = argparse.ArgumentParser(prog=f"wmrobust {command}", description=what)
    if command == "status":
        parser.add_argument("paths", nargs="*", type=Path, default=[Path("results")], metavar="PATH",
                            help="results roots (one folder per scale), scale folders, or run directories "
                                 "(default: results)")
    else:
        parser.add_argument("--config", default="config/config.yaml", help="experiment config (default: %(default)s)")
        parser.add_argument("--results", default="results", help="results root, one folder per scale (default: %(default)s)")
    if command == "plan":
        parser.add_argument("--scale", help="scale to plan (default: the config's)")
        parser.add_argument("--cache", default="cache", help="shipped results, one folder per scale (default: %(default)s)")
        parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                            help="cores the grid runs on, for the wall-clock estimate (default: this machine's)")
        parser.add_argument("target", nargs="*", help="artifact ids (default: every artifact of the scale)")
    args = parser.parse_args(argv)
    if command == "status":
        rows = [row for path in args.paths for row in find_runs(path)]
        if not rows:
            print(f"no runs under {', '.join(map(str, args.paths))}")
        for r in rows:
            frames = "" if r["frames"] is None else f"{r['frames']} frames"
            run = f"{r['scale']}: {r['task']}/{r['variant']}/{r['seed']}" if r["scale"] else r["path"]
            print(f"{run:<40} {r['id']:<13} {r['state']:<10} {frames}")
        counts = Counter(r["state"] for r in rows)
        print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
        return 0
    overrides = {"scale": args.scale} if args.scale else {}
    exp = Experiment.from_file(args.config, **overrides)
    artifacts = args.target or exp.artifact_ids
    for a in artifacts:
        if a not in exp.config["artifacts"]:
            raise ConfigError(f"unknown artifact {a!r}; artifacts: {', '.join(exp.config['artifacts'])}")
        if a not in exp.artifact_ids:
            raise ConfigError(f"artifact {a!r} is not built at scale {exp.scale_name!r} "
                              f"(it builds: {', '.join(exp.artifact_ids)})")
    results = Path(args.results) / exp.scale_name
    # Seed-major, the order the grid is run in: what exists at any moment is balanced across variants.
    runs = sorted({r for a in artifacts for r in exp.artifact_runs(a)}, key=lambda r: (r.seed, r.task, r.variant))
    progress = grid_progress(exp, runs, results, Path(args.cache) / exp.scale_name)
    run_hours = progress["per_run"] if progress["finished"] else None
    rows = estimate(exp, job_counts(exp, artifacts, args.target or ["figures"]), results, run_hours)
    print(format_plan(exp, artifacts, rows))
    print(f"\n{format_progress(progress, args.cores)}")
    print(f"\n{len(runs)} runs ({results}/runs/<task>/<variant>/seed<k>-<run id>):")
    for run in runs:
        s = progress["states"][run]
        frames = f"{s['frames'] or 0:,}/{s['total_frames']:,} frames" if s["state"] != "to do" else ""
        print(f"  {run.path:<45} {s['state']:<10} {frames}")
    return 0
