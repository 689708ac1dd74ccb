"""Environment configuration (no dm_control import, so configs resolve cheaply)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

# The values of MUJOCO_GL that dm_control renders with (wmrobust.envs.dmc sets egl when unset).
GL_BACKENDS = ("egl", "osmesa", "glfw")


def gl_problem() -> str | None:
    """None when MUJOCO_GL is unset or a backend dm_control knows, else a one-line message."""
    value = os.environ.get("MUJOCO_GL")
    if value is None or value in GL_BACKENDS:
        return None
    return (f"MUJOCO_GL={value!r} is not a rendering backend dm_control knows ({', '.join(GL_BACKENDS)}; "
            f"headless: egl, or osmesa without EGL)")


# dm_control.suite.ALL_TASKS as <domain>_<task> (the names wmrobust.envs.dmc.split_task
# accepts), in the suite's order, with the number of cameras of each task's model. Kept here
# so configs are checked without importing dm_control (seconds); tests/test_errors.py checks
# it against the installed suite.
TASK_CAMERAS: dict[str, int] = {
    "acrobot_swingup": 2, "acrobot_swingup_sparse": 2, "ball_in_cup_catch": 2, "cartpole_balance": 2,
    "cartpole_balance_sparse": 2, "cartpole_swingup": 2, "cartpole_swingup_sparse": 2, "cartpole_two_poles": 2,
    "cartpole_three_poles": 2, "cheetah_run": 2, "dog_stand": 2, "dog_walk": 2,
    "dog_trot": 2, "dog_run": 2, "dog_fetch": 4, "finger_spin": 2,
    "finger_turn_easy": 2, "finger_turn_hard": 2, "fish_upright": 5, "fish_swim": 5,
    "hopper_stand": 2, "hopper_hop": 2, "humanoid_stand": 3, "humanoid_walk": 3,
    "humanoid_run": 3, "humanoid_run_pure_state": 3, "humanoid_CMU_stand": 3, "humanoid_CMU_walk": 3,
    "humanoid_CMU_run": 3, "lqr_lqr_2_1": 2, "lqr_lqr_6_2": 2, "manipulator_bring_ball": 2,
    "manipulator_bring_peg": 2, "manipulator_insert_ball": 2, "manipulator_insert_peg": 2, "pendulum_swingup": 2,
    "point_mass_easy": 2, "point_mass_hard": 2, "quadruped_walk": 4, "quadruped_run": 4,
    "quadruped_escape": 4, "quadruped_fetch": 4, "reacher_easy": 2, "reacher_hard": 2,
    "stacker_stack_2": 2, "stacker_stack_4": 2, "swimmer_swimmer6": 3, "swimmer_swimmer15": 3,
    "walker_stand": 2, "walker_walk": 2, "walker_run": 2,
}


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
        if self.task not in TASK_CAMERAS:
            shape = "" if "_" in self.task else " (not <domain>_<task>, e.g. walker_walk)"
            raise ValueError(f"env.task: unknown dm_control task {self.task!r}{shape}; "
                             f"valid tasks: {', '.join(TASK_CAMERAS)}")
        cameras = TASK_CAMERAS[self.task]
        if self.camera is not None and not 0 <= self.camera < cameras:
            raise ValueError(f"env.camera: {self.camera} is not a camera of {self.task} "
                             f"(ids 0..{cameras - 1}, or null for the Dreamer papers' camera)")
        if self.image_size < 8:
            raise ValueError(f"env.image_size: {self.image_size} is too small (>= 8)")
        if self.action_repeat < 1:
            raise ValueError(f"env.action_repeat: {self.action_repeat} must be >= 1")
        if self.episode_frames < self.action_repeat:
            raise ValueError(
                f"env.episode_frames: {self.episode_frames} is shorter than one agent step "
                f"(action_repeat {self.action_repeat})"
            )
