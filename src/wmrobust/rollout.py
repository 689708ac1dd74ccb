"""Open-loop prediction error per horizon, and transition Jacobian norms, on held-out episodes.

Windows: each held-out episode of T steps is cut into non-overlapping windows of
``context + horizon`` steps starting at 0, L, 2L, ... (L = context + horizon), as
many as fit; every window starts a fresh latent state (``is_first`` at its first
step). The world model filters the first ``context`` steps of a window, then
imagines ``horizon`` steps from the recorded actions (prior modes). Errors at
horizon h are averaged over all windows of all episodes. With the smoke scale's
short episodes that is one window per episode; with 1000-frame episodes
(500 steps) and 5 + 50 steps, nine.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from wmrobust.io import write_table
from wmrobust.perturb import SpecError
from wmrobust.rundir import RunError, load_agent, load_trained

LAYOUT = ("action", "reward", "is_first", "is_terminal")
BATCH = 16
"""Windows per open-loop call (bounds memory for long held-out sets)."""


def load_heldout(path: Path, obs_key: str, task: str) -> dict[str, np.ndarray]:
    """Held-out episodes (N, T, ...) in the replay layout, with RunError naming the file
    when it is missing, unreadable, or from another task or observation type than the run."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise RunError(f"{path}: no such held-out episodes file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise RunError(f"{path}: cannot read held-out episodes ({err})") from None
    if "task" in data and str(data["task"]) != task:
        raise RunError(f"{path}: held-out episodes are from task {str(data['task'])!r}, the run's task is {task!r}")
    missing = [key for key in (obs_key, *LAYOUT) if key not in data]
    if missing:
        raise RunError(f"{path}: held-out episodes lack {', '.join(missing)} (the run observes {obs_key!r}; "
                       f"the file has {', '.join(sorted(data))})")
    return {key: data[key] for key in (obs_key, *LAYOUT)}


def windows(data: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """Non-overlapping windows of `length` steps of every episode, stacked (N * W, length, ...)."""
    steps = data["action"].shape[1]
    starts = range(0, steps - length + 1, length)
    out = {key: np.concatenate([value[:, s : s + length] for s in starts]) for key, value in data.items()}
    out["is_first"] = out["is_first"].copy()
    out["is_first"][:, 0] = True
    return out


def open_loop_errors(world_model, data: dict[str, np.ndarray], context: int, horizon: int) -> dict[str, np.ndarray]:
    """Per-horizon errors (H,) averaged over all windows of `data`."""
    data = windows(data, context + horizon)
    count = len(data["action"])
    sums = {"obs_mse": 0.0, "latent_dist": 0.0, "reward_error": 0.0}
    for start in range(0, count, BATCH):
        out = world_model.open_loop({k: v[start : start + BATCH] for k, v in data.items()}, context, horizon)
        sq = (out["obs_pred"].float() - out["obs_true"].float()) ** 2
        sums["obs_mse"] = sums["obs_mse"] + sq.flatten(2).mean(-1).sum(0).cpu().numpy()
        dist = (out["latent_pred"] - out["latent_post"]).norm(dim=-1)
        sums["latent_dist"] = sums["latent_dist"] + dist.sum(0).cpu().numpy()
        err = (out["reward_pred"].float() - out["reward_true"].float()).abs()
        sums["reward_error"] = sums["reward_error"] + err.sum(0).cpu().numpy()
    return {key: value / count for key, value in sums.items()}


def rollout(run_dir: Path, heldout: Path, out: Path, jacobian_out: Path, *, variant: str, context: int = 5,
            horizon: int = 50) -> None:
    """Open-loop errors per horizon 1..`horizon` after `context` filtered steps (to `out`),
    and the transition Jacobian's Frobenius and spectral norms on the held-out posterior
    states (to `jacobian_out`). A diverged run gives the same rows with NaN values."""
    if context < 1 or horizon < 1:
        raise SpecError(f"context {context} and horizon {horizon} must be >= 1")
    run = load_trained(run_dir)
    status = run.status["status"]
    if run.diverged:
        errors = {key: np.full(horizon, np.nan) for key in ("obs_mse", "latent_dist", "reward_error")}
        norms = {"frobenius": float("nan"), "spectral": float("nan")}
    else:
        obs_key = "image" if run.cfg.env.obs == "pixels" else "vector"
        data = load_heldout(heldout, obs_key, run.cfg.env.task)
        steps = data["action"].shape[1]
        if steps < context + horizon:
            raise RunError(f"{heldout}: held-out episodes have {steps} steps, fewer than context {context} + "
                           f"horizon {horizon} = {context + horizon}; collect longer episodes (--episode-frames)")
        obs_space = {obs_key: (data[obs_key].shape[2:], data[obs_key].dtype)}
        agent = load_agent(run, obs_space, data["action"].shape[-1])
        agent.eval()
        errors = open_loop_errors(agent.world_model, data, context, horizon)
        norms = agent.world_model.jacobian_norms(data)

    identity = run.cfg.id_columns(variant)
    table = pd.DataFrame([
        {**identity, "horizon": h + 1, **{key: float(value[h]) for key, value in errors.items()}, "status": status}
        for h in range(horizon)
    ])
    jacobian = pd.DataFrame([{**identity, "norm": name, "value": float(value), "status": status}
                             for name, value in norms.items()])
    extra = dict(config_hash=run.cfg.hash(), variant=variant, run_dir=str(run.path), heldout=str(heldout),
                 context=context, horizon=horizon)
    write_table(table, out, **extra)
    write_table(jacobian, jacobian_out, **extra)


def cli(command: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"wmrobust {command}",
        description="open-loop prediction error per horizon and transition Jacobian norms on held-out episodes")
    parser.add_argument("--run-dir", type=Path, required=True, help="run directory (config.yaml, status.json, model.pt)")
    parser.add_argument("--heldout", type=Path, required=True, help="held-out episodes (.npz from wmrobust collect)")
    parser.add_argument("--out", type=Path, required=True, help="per-horizon error table (.parquet or .csv)")
    parser.add_argument("--jacobian-out", type=Path, required=True, help="Jacobian norm table (.parquet or .csv)")
    parser.add_argument("--variant", required=True, help="variant name (the identity column)")
    parser.add_argument("--context", type=int, default=5, help="filtered steps before imagining (default 5)")
    parser.add_argument("--horizon", type=int, default=50, help="imagined steps (default 50)")
    args = parser.parse_args(argv)
    rollout(args.run_dir, args.heldout, args.out, args.jacobian_out, variant=args.variant,
            context=args.context, horizon=args.horizon)
    return 0
