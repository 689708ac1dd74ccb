"""Environment configuration (no dm_control import, so configs resolve cheaply)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EnvConfig:
    """A DeepMind Control task and how the agent observes it.

    Same seed, same episode: ``make_env(cfg, seed)`` seeds the task (``task_kwargs={'random': seed}``)
    and the perturbation noise from `seed`; see wmrobust.envs.dmc.
    """

    task: str = "walker_walk"
    """dm_control suite task as <domain>_<task>, e.g. walker_walk, quadruped_walk, cheetah_run."""
    obs: Literal["pixels", "vector"] = "pixels"
    """Observe RGB pixels ('image', uint8 HWC) or the proprioceptive state ('vector', float32:
    the suite's observation dict flattened in sorted key order)."""
    image_size: int = 64
    """Side of the square rendered image, in pixels."""
    camera: int | None = None
    """Camera id; None picks the Dreamer papers' camera for the domain (quadruped 2, else 0)."""
    action_repeat: int = 2
    """Env frames per agent step (the action is repeated, rewards summed)."""
    episode_frames: int = 1000
    """Env frames per episode: done after episode_frames / action_repeat agent steps, or at
    the suite's own time limit (1000 frames) if that comes first."""
    render: Literal["standard", "fast"] = "standard"
    """standard: the stock scene (pixels equal dm_control's physics.render). fast: shadows and
    reflections off (sky kept), several times faster on CPU (see bench/envs.py) but a visibly
    different image: it changes what the agent sees, so compare runs only within one setting."""

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
