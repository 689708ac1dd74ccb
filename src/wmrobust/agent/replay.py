"""Replay of complete episodes; uniform sampling of fixed-length sequences inside episodes.

Episodes are dicts of numpy arrays in the replay layout (see the package contract). On disk
(resume checkpoints) each episode is one immutable ``<id>.npz``, so a checkpoint writes
only the episodes added since the previous one.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from wmrobust.io import atomic_path


class Replay:
    def __init__(self, capacity: int, first_at_start: bool = True):
        self.capacity = capacity
        # DreamerV2 and DreamerV3 mark every sampled window's first step as an episode start,
        # so the world model filters it from the initial state instead of a zero state it
        # would otherwise treat as the (unseen) previous step.
        self.first_at_start = first_at_start
        self.episodes: dict[int, dict[str, np.ndarray]] = {}
        self.next_id = 0

    @property
    def steps(self) -> int:
        return sum(len(ep["reward"]) for ep in self.episodes.values())

    def add(self, episode: dict[str, np.ndarray]) -> None:
        self.episodes[self.next_id] = episode
        self.next_id += 1
        # Drop the oldest episodes beyond capacity, always keeping the newest one.
        while self.steps > self.capacity and len(self.episodes) > 1:
            del self.episodes[min(self.episodes)]

    def can_sample(self, length: int) -> bool:
        return any(len(ep["reward"]) >= length for ep in self.episodes.values())

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """(B, T, ...) sequences, every valid window of every episode equally likely;
        ``is_first[:, 0]`` is True (``first_at_start``) wherever the window starts."""
        eps = [ep for ep in self.episodes.values() if len(ep["reward"]) >= length]
        if not eps:
            raise ValueError(f"replay holds no episode of at least batch_length={length} steps")
        windows = np.array([len(ep["reward"]) - length + 1 for ep in eps], dtype=np.float64)
        which = rng.choice(len(eps), size=batch_size, p=windows / windows.sum())
        starts = [int(rng.integers(0, windows[i])) for i in which]
        batch = {key: np.stack([eps[i][key][s : s + length] for i, s in zip(which, starts)])
                 for key in eps[0]}
        if self.first_at_start and "is_first" in batch:
            batch["is_first"][:, 0] = True  # np.stack copied: the stored episodes stay as they are
        return batch

    def save(self, folder: Path) -> list[int]:
        """Write the episodes not yet in ``folder``; returns the ids held."""
        folder.mkdir(parents=True, exist_ok=True)
        for i, ep in self.episodes.items():
            path = folder / f"{i:08d}.npz"
            if not path.exists():
                with atomic_path(path) as tmp:
                    with open(tmp, "wb") as f:
                        np.savez(f, **ep)
        return sorted(self.episodes)

    def prune(self, folder: Path) -> None:
        """Delete dropped episodes; call once the checkpoint no longer refers to them."""
        for path in folder.glob("*.npz"):
            if int(path.stem) not in self.episodes:
                path.unlink()

    def load(self, folder: Path, ids: list[int], next_id: int) -> None:
        self.episodes = {}
        for i in ids:
            path = folder / f"{i:08d}.npz"
            try:
                with np.load(path, allow_pickle=False) as data:
                    self.episodes[i] = {k: data[k] for k in data.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated: BadZipFile, EOFError
                raise ValueError(f"{path}: cannot read replay episode of the checkpoint ({err})") from err
        self.next_id = next_id
