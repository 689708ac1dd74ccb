"""A training run's directory: the one place that knows its layout and its files.

    results/<scale>/runs/<task>/<variant>/seed<k>-<run id>/     (LAYOUT below runs/)
        config.yaml       the resolved run config; its hash is the run id
        status.json       running | stopped | finished | diverged, counters, provenance,
                          and model.pt's SHA-256 once the run has ended
        model.pt          the final agent
        metrics.parquet   training curves and losses (+ .provenance.json)
        checkpoint/       the resume state while the run trains (progress.json: its frames)
        .lock             held by the process training it

The per-run results of later stages (eval/, rollout/, heldout/) sit under the same LAYOUT
in folders of their own (``Experiment.result_file``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wmrobust.config import ConfigError, RunConfig, config_hash, identity_diff, load_yaml, save_yaml
from wmrobust.io import atomic_write_json, file_digest

LAYOUT = "{task}/{variant}/seed{seed}-{rid}"
"""A run's folder below ``runs/`` (and below each later stage's folder); a changed config is
a new run id, so a new folder beside the old one."""
CONFIG, STATUS, MODEL, METRICS, CHECKPOINT = "config.yaml", "status.json", "model.pt", "metrics.parquet", "checkpoint"
PROGRESS = "progress.json"
"""In checkpoint/: the frames and updates the checkpoint holds. status.json cannot be relied on
for them once a run has stopped: Snakemake deletes the declared outputs of a failed job, a
stopped one included (or restores the versions from before the job), never the checkpoint."""
ENDED = ("finished", "diverged")
"""Statuses of a run that has nothing left to train: its results are final."""


class RunError(ConfigError):
    """A run directory that cannot be used as asked (missing, corrupt, edited or busy); the
    message names the file."""


def run_path(task: str, variant: str, seed: int, rid: str) -> str:
    return LAYOUT.format(task=task, variant=variant, seed=seed, rid=rid)


# ---------------------------------------------------------------------------
# status.json and config.yaml.


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's status.json, None before the run has written one; RunError when unreadable."""
    path = Path(run_dir) / STATUS
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:  # OSError: e.g. a directory
        raise RunError(f"{path}: not a valid JSON object ({err})") from None
    if not isinstance(status, dict):
        raise RunError(f"{path}: not a valid JSON object (a JSON {type(status).__name__})")
    return status


def write_status(run_dir: Path, status: dict[str, Any]) -> None:
    atomic_write_json(Path(run_dir) / STATUS, status)


def prepare(cfg: RunConfig, run_dir: Path) -> str | None:
    """Write config.yaml into a new run directory, or check that the one there is this run's
    (same identity); returns the status of a run that has ended (nothing left to do), else None."""
    path = run_dir / CONFIG
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, path)
        return None
    old = load_yaml(path)
    if config_hash(old) != config_hash(cfg):
        raise RunError(f"{path}: the run directory holds a different config "
                       f"(differs in {', '.join(identity_diff(old, cfg))}); use another run directory")
    try:
        status = read_status(run_dir)
    except RunError as err:
        raise RunError(f"{err}; delete it to resume the run") from None
    if status is None or status.get("status") not in ENDED:
        return None
    if status.get("config_hash") != config_hash(cfg):
        raise RunError(f"{run_dir / STATUS}: records run id {status.get('config_hash')!r}, "
                       f"but config.yaml is run {config_hash(cfg)}; was a file edited or copied?")
    problem = model_problem(run_dir, status)
    if problem:
        raise RunError(f"{problem}; delete {run_dir} to train the run again")
    return status["status"]


@contextlib.contextmanager
def lock(run_dir: Path):
    """Hold the run directory's lock (released when the process ends, however it ends), or
    refuse naming the process that holds it: two trainings of one run would write the same files."""
    import fcntl

    with open(run_dir / ".lock", "a+") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.seek(0)
            raise RunError(f"{run_dir}: already being trained by process {held.read().strip() or '?'} "
                           f"(its lock {run_dir / '.lock'}); wait for it or stop it first") from None
        held.truncate(0)
        held.write(f"{os.getpid()} on {socket.gethostname()}")
        held.flush()
        yield


# ---------------------------------------------------------------------------
# A trained run, for the stages after training.


@dataclass(frozen=True)
class TrainedRun:
    """A run directory whose training has ended: its config and status, identity checked."""

    path: Path
    cfg: RunConfig
    status: dict[str, Any]

    @property
    def diverged(self) -> bool:
        return self.status["status"] == "diverged"

    @property
    def model_path(self) -> Path:
        return self.path / MODEL


def load_trained(run_dir: Path) -> TrainedRun:
    """The run's config and status; refuses missing, corrupt, edited or unfinished runs."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    try:
        cfg = load_yaml(run_dir / CONFIG)
    except ConfigError as err:
        raise RunError(str(err)) from None
    status = read_status(run_dir)
    if status is None:
        raise RunError(f"{run_dir / STATUS}: no such status file (has the run started?)")
    if status.get("status") not in ENDED:
        raise RunError(f"{run_dir / STATUS}: status is {status.get('status')!r}; "
                       f"only finished or diverged runs can be evaluated")
    check_identity(run_dir, cfg, status)
    return TrainedRun(run_dir, cfg, status)


def check_identity(run_dir: Path, cfg: RunConfig, status: dict[str, Any]) -> None:
    """Refuse a run whose config.yaml is not the config it was trained with: its hash must
    equal status.json's and, for a workflow directory ``seed<k>-<id>``, the id in its name."""
    rid = cfg.hash()
    if status.get("config_hash") != rid:
        raise RunError(f"{run_dir / CONFIG}: its run id {rid} is not the trained run's "
                       f"{status.get('config_hash')!r} ({STATUS}); was config.yaml edited?")
    prefix, sep, named = run_dir.name.rpartition("-")
    if sep and prefix.startswith("seed") and len(named) == len(rid) and named != rid:
        raise RunError(f"{run_dir}: the directory names run id {named}, its config.yaml has {rid}")


def model_problem(run_dir: Path, status: dict[str, Any]) -> str | None:
    """None if the run's model.pt is the one its training saved (status.json's digest), else why not."""
    model = run_dir / MODEL
    if not model.is_file():
        return f"{model}: no such model file, though {STATUS} says {status.get('status')!r}"
    if file_digest(model) != status.get("model_sha256"):
        return f"{model}: not the model this run saved (its SHA-256 is not {STATUS}'s model_sha256)"
    return None


def load_agent(run: TrainedRun, obs_space: dict, act_dim: int):
    """The run's final agent on CPU, or RunError naming model.pt."""
    from wmrobust.agent import Agent

    problem = model_problem(run.path, run.status)
    if problem:
        raise RunError(problem)
    try:
        return Agent.load(run.model_path, obs_space, act_dim, run.cfg.agent, "cpu")
    except (FileNotFoundError, ValueError) as err:
        raise RunError(str(err)) from None


# ---------------------------------------------------------------------------
# What a run directory is doing, for `wmrobust status` and the cache.


def state(run_dir: Path) -> dict[str, Any]:
    """A run directory's state: finished, diverged, stopped (resumable), running (its process
    is alive here), resumable (a checkpoint to continue from), failed (neither), or corrupt;
    with its frames (a resumable run's: its checkpoint's) and id."""
    try:
        status = read_status(run_dir) or {"status": "running"}
    except RunError:
        return {"state": "corrupt", "frames": None, "id": "-"}
    name = status.get("status", "unknown")
    if name == "running":
        alive = status.get("host") in (None, socket.gethostname()) and _alive(status.get("pid"))
        name = "running" if alive else ("resumable" if (run_dir / CHECKPOINT).exists() else "failed")
    frames = status.get("frames")
    if name in ("stopped", "resumable"):
        frames = _checkpoint_frames(run_dir, frames)
    return {"state": name, "frames": frames, "id": status.get("config_hash") or "-"}


def _checkpoint_frames(run_dir: Path, default: Any) -> Any:
    try:
        frames = json.loads((run_dir / CHECKPOINT / PROGRESS).read_text())["frames"]
    except (OSError, ValueError, TypeError, KeyError):  # none yet (an older checkpoint), or unreadable
        return default
    return frames if isinstance(frames, int) else default


def scan(runs: Path) -> list[dict[str, Any]]:
    """Every run directory under a scale's ``runs/`` folder that has started (a status or a
    checkpoint): its task, variant, seed and id, and its state."""
    rows = []
    for run_dir in sorted({p.parent for name in (STATUS, CHECKPOINT) for p in runs.glob(f"*/*/seed*/{name}")}):
        task, variant, name = run_dir.relative_to(runs).parts
        seed, _, rid = name.partition("-")
        now = state(run_dir)
        rows.append({"task": task, "variant": variant, "seed": seed, **now, "id": rid or now["id"]})
    return rows


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
