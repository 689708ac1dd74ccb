"""Checkpoints of a training run: what `wmrobust train` saves so that resuming is exact.

A checkpoint (``<run dir>/checkpoint/``) is ``state.pt`` and the replay episodes
(``replay/``), and beside them the trainer's ``progress.json`` (``rundir.PROGRESS``: how far
the checkpoint is, where Snakemake leaves it). ``state.pt`` holds what the trainer hands
over (``Trainer.checkpoint_state``: the config hash, the model, the optimizers, the counters,
the episode in progress with the policy's state, the last training batch, the metrics rows,
pending update metrics and wall time so far), the replay episode ids, and the torch / numpy
/ python (and CUDA) random states. Environments are not saved: the trainer recreates them from its counters and
replays the episode in progress (``Trainer.restore``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from wmrobust.errors import UserError
from wmrobust.io import atomic_path

STATE = "state.pt"


class CheckpointError(UserError):
    """A checkpoint is unreadable or belongs to another config; the message names the file."""


def save_checkpoint(ckpt_dir: Path, state: dict[str, Any], replay, rng: np.random.Generator) -> None:
    """Write the replay episodes, then ``state`` with the random states as state.pt (atomically,
    so a checkpoint is whole or absent), then prune replay files it no longer lists."""
    import torch

    ids = replay.save(ckpt_dir / "replay")
    state = {**state, "replay": {"ids": ids, "next_id": replay.next_id}, "rng": {
        "torch": torch.get_rng_state(), "numpy": rng.bit_generator.state, "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}
    with atomic_path(ckpt_dir / STATE) as tmp:
        torch.save(state, tmp)
    replay.prune(ckpt_dir / "replay")


def load_checkpoint(ckpt_dir: Path, config_hash: str, device: str, replay,
                    rng: np.random.Generator) -> dict[str, Any]:
    """The saved state of run ``config_hash``, its episodes loaded into ``replay`` and the random
    states restored (``rng`` and the process-wide ones); a CheckpointError names a bad file."""
    import torch

    path = ckpt_dir / STATE
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # truncated or foreign files raise many types
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({err}); delete it to restart the run") from err
    if state.get("config_hash") != config_hash:
        raise CheckpointError(f"{path}: checkpoint of config {state.get('config_hash')}, "
                              f"but the run's config is {config_hash}; delete it to restart the run")
    try:
        replay.load(ckpt_dir / "replay", state["replay"]["ids"], state["replay"]["next_id"])
    except Exception as err:  # truncated or foreign .npz files raise many types
        text = " ".join(str(err).split())
        raise CheckpointError(f"{text}; delete {ckpt_dir} to restart the run") from err
    saved = state["rng"]
    torch.set_rng_state(saved["torch"].cpu())
    if saved["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in saved["cuda"]])
    rng.bit_generator.state = saved["numpy"]
    random.setstate(saved["python"])
    return state
