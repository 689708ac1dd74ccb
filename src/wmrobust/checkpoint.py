"""Checkpoints of a training run: what `wmrobust train` saves so that resuming is exact.

A checkpoint (``<run dir>/checkpoint/``) is ``state.pt`` and the replay episodes
(``replay/``). ``state.pt`` holds the config hash, the model, the optimizers, the
counters, the torch / numpy / python (and CUDA) RNG states, the replay episode ids, the
episode in progress with the policy's state, the last training batch, and the metrics
rows, pending update metrics and wall time so far. Environments are not saved: they are
recreated from counters (episode k of the run uses seed ``episode_seed(seed, TRAIN, k)``
of ``wmrobust.train``), and a resumed episode replays its recorded actions to reach the
same state (``resume_episode``).

Each function takes the ``wmrobust.train.Trainer`` whose state it saves or restores.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from wmrobust.errors import UserError
from wmrobust.io import atomic_path


class CheckpointError(UserError):
    """A checkpoint is unreadable or belongs to another config; the message names the file."""


def save_checkpoint(trainer: Any) -> None:
    """Write the trainer's state to ``trainer.ckpt_dir`` (state.pt last, then prune replay files)."""
    import torch

    ids = trainer.replay.save(trainer.ckpt_dir / "replay")
    episode = ({k: torch.from_numpy(np.stack([s[k] for s in trainer.episode])) for k in trainer.episode[0]}
               if trainer.env is not None else None)
    state = {
        "config_hash": trainer.hash,
        "agent": trainer.agent.state_dict(),
        "optimizers": trainer.agent.optimizer_state(),
        "counters": dict(trainer.count),
        "rng": {"torch": torch.get_rng_state(), "numpy": trainer.rng.bit_generator.state,
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "replay": {"ids": ids, "next_id": trainer.replay.next_id},
        "episode": episode,
        "act_state": trainer.act_state if trainer.env is not None else None,
        "last_batch": ({k: torch.from_numpy(v) for k, v in trainer.last_batch.items()}
                       if trainer.last_batch is not None else None),
        "rows": trainer.rows, "pending": trainer.pending, "elapsed": trainer.wall_time(),
    }
    with atomic_path(trainer.ckpt_dir / "state.pt") as tmp:
        torch.save(state, tmp)
    trainer.replay.prune(trainer.ckpt_dir / "replay")
    trainer.last_checkpoint = time.monotonic()


def load_checkpoint(trainer: Any) -> None:
    """Restore the trainer's state from ``trainer.ckpt_dir``; a CheckpointError names a bad file."""
    import torch

    path = trainer.ckpt_dir / "state.pt"
    try:
        state = torch.load(path, map_location=trainer.device, weights_only=True)
    except Exception as err:  # truncated or foreign files raise many types
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({err}); delete it to restart the run") from err
    if state.get("config_hash") != trainer.hash:
        raise CheckpointError(f"{path}: checkpoint of config {state.get('config_hash')}, "
                              f"but the run's config is {trainer.hash}; delete it to restart the run")
    trainer.agent.load_state_dict(state["agent"])
    trainer.agent.load_optimizer_state(state["optimizers"])
    trainer.count = dict(state["counters"])
    try:
        trainer.replay.load(trainer.ckpt_dir / "replay", state["replay"]["ids"], state["replay"]["next_id"])
    except Exception as err:  # truncated or foreign .npz files raise many types
        text = " ".join(str(err).split())
        raise CheckpointError(f"{text}; delete {trainer.ckpt_dir} to restart the run") from err
    trainer.rows, trainer.pending, trainer.elapsed = state["rows"], state["pending"], state["elapsed"]
    if state["episode"] is not None:
        resume_episode(trainer, {k: v.cpu().numpy() for k, v in state["episode"].items()}, path)
        trainer.act_state = state["act_state"]
    if state["last_batch"] is not None:
        trainer.last_batch = {k: v.cpu().numpy() for k, v in state["last_batch"].items()}
    rng = state["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    trainer.rng.bit_generator.state = rng["numpy"]
    random.setstate(rng["python"])


def resume_episode(trainer: Any, episode: dict[str, np.ndarray], path: Path) -> None:
    """Recreate the episode's env and replay its actions up to where the checkpoint was."""
    trainer.open_episode_env()
    for action in episode["action"][1:]:
        trainer.obs, _, _ = trainer.env.step(action)
    if not np.array_equal(trainer.obs[trainer.key], episode[trainer.key][-1]):
        raise CheckpointError(f"{path}: replaying the episode in progress did not reproduce its "
                              f"observations; the environment is not deterministic given its seed")
    trainer.episode = [{k: v[i] for k, v in episode.items()} for i in range(len(episode["reward"]))]
