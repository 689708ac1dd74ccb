"""Environment configuration (no dm_control import, so configs resolve cheaply)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EnvConfig:
    """A DeepMind Control task and how the agent observes it."""

    task: str = "walker_walk"
    """dm_control suite task as <domain>_<task>, e.g. walker_walk, quadruped_walk, cheetah_run."""
    obs: Literal["pixels", "vector"] = "pixels"
    """Observe 64x64 RGB pixels or the proprioceptive state vector."""
    image_size: int = 64
    """Side of the square rendered image, in pixels."""
    camera: int | None = None
    """Camera id; None picks the Dreamer papers' camera for the domain (quadruped 2, else 0)."""
    action_repeat: int = 2
    """Env frames per agent step (the action is repeated, rewards summed)."""
    episode_frames: int = 1000
    """Env frames per episode (the suite's time limit is 1000)."""
    render: Literal["standard", "fast"] = "standard"
    """standard: the stock scene. fast: shadows and reflections off and a cached camera,
    about 7x faster on CPU but a visibly different image: it changes what the agent sees."""

    def __post_init__(self):
        if "_" not in self.task:
            raise ValueError(f"env.task: {self.task!r} is not <domain>_<task> (e.g. walker_walk)")
        if self.image_size < 8:
            raise ValueError(f"env.image_size: {self.image_size} is too small (>= 8)")
        if self.action_repeat < 1:
            raise ValueError(f"env.action_repeat: {self.action_repeat} must be >= 1")
        if self.episode_frames < self.action_repeat:
            raise ValueError(
                f"env.episode_frames: {self.episode_frames} is shorter than one agent step "
                f"(action_repeat {self.action_repeat})"
            )
