"""DeepMind Control suite tasks as pixel or proprioceptive envs, and `make_env`.

Seeding: an env's task randomness (initial poses) comes from ``task_kwargs={'random': seed}``,
and the observation perturbations draw from a generator seeded with the same seed. So
the k-th episode of ``make_env(cfg, seed, condition)`` is the same every time; in
particular a fresh env per episode seed gives a reproducible episode per seed.
Resetting does not reseed: later episodes of one env continue the seed's streams.
"""

from __future__ import annotations

import functools
import os

# Before dm_control loads: headless rendering by default, and the user's choice wins.
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from dm_control import suite  # noqa: E402

from wmrobust.envs.config import EnvConfig  # noqa: E402
from wmrobust.perturb import CLEAN, Condition  # noqa: E402
from wmrobust.perturb.wrappers import DynamicsPerturbation, ObservationPerturbation  # noqa: E402

# The Dreamer papers' camera per domain; 0 elsewhere.
DREAMER_CAMERAS = {"quadruped": 2}
# Separates the perturbation random stream from other uses of the env seed.
PERTURBATION_STREAM = 0x9E37
# Vector noise unit: each dimension's spread over this many full episodes of uniform
# random actions, from env seeds SPREAD_SEED_BASE + k (apart from training seeds and
# the evaluation seeds at 1,000,000 + k).
SPREAD_EPISODES = 5
SPREAD_SEED_BASE = 2_000_000


def split_task(name: str) -> tuple[str, str]:
    """'walker_walk' -> ('walker', 'walk'); also domains with underscores ('ball_in_cup_catch')."""
    for domain, task in suite.ALL_TASKS:
        if f"{domain}_{task}" == name:
            return domain, task
    valid = ", ".join(f"{d}_{t}" for d, t in suite.ALL_TASKS)
    raise ValueError(f"env.task: unknown dm_control task {name!r}; valid tasks: {valid}")


class DMCEnv:
    """One dm_control task with action repeat, an episode length and 'image' or 'vector' obs.

    Actions are float32 in [-1, 1], mapped linearly onto the task's action bounds.
    """

    def __init__(self, cfg: EnvConfig, seed: int):
        self.cfg = cfg
        domain, task = split_task(cfg.task)
        self._env = suite.load(domain, task, task_kwargs={"random": seed})
        self.camera = DREAMER_CAMERAS.get(domain, 0) if cfg.camera is None else cfg.camera
        ncam = self.physics.model.ncam
        if cfg.obs == "pixels" and not 0 <= self.camera < ncam:
            raise ValueError(f"env.camera: {self.camera} is not a camera of {cfg.task} (ids 0..{ncam - 1})")
        spec = self._env.action_spec()
        self.act_dim = int(spec.shape[0])
        self._act_low = spec.minimum.astype(np.float32)
        self._act_high = spec.maximum.astype(np.float32)
        if cfg.obs == "pixels":
            self.obs_space = {"image": ((cfg.image_size, cfg.image_size, 3), np.uint8)}
        else:
            size = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
            self.obs_space = {"vector": ((size,), np.float32)}
        self._renderer = None
        self._frames = None  # None until the first reset

    @property
    def physics(self):
        return self._env.physics

    def render(self) -> np.ndarray:
        """The current frame from the env's camera, uint8 (size, size, 3).

        One mujoco.Renderer is kept and reused; with the stock scene flags its pixels
        equal dm_control's ``physics.render``. render='fast' turns shadows and
        reflections off in the scene, which changes what the agent sees.
        """
        model = self.physics.model.ptr
        if self._renderer is None or self._renderer.model is not model:
            if self._renderer is not None:
                self._renderer.close()
            size = self.cfg.image_size
            try:
                # 1000 scene geoms is plenty for the suite; the default 10000 takes ~0.15 s to allocate.
                self._renderer = mujoco.Renderer(model, size, size, max_geom=1000)
            except mujoco.FatalError as error:
                raise RuntimeError(
                    f"cannot render {self.cfg.task} ({error}); MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} "
                    "must name a headless backend (egl or osmesa) before mujoco is first imported"
                ) from error
            if self.cfg.render == "fast":
                self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
                self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._renderer.update_scene(self.physics.data.ptr, camera=self.camera)
        return self._renderer.render()

    def _obs(self, time_step) -> dict[str, np.ndarray]:
        if self.cfg.obs == "pixels":
            return {"image": self.render()}
        obs = time_step.observation
        return {"vector": np.concatenate([np.asarray(obs[k], np.float32).ravel() for k in sorted(obs)])}

    def reset(self) -> dict[str, np.ndarray]:
        self._frames = 0
        return self._obs(self._env.reset())

    def step(self, action) -> tuple[dict[str, np.ndarray], float, bool]:
        """Repeat `action` for action_repeat frames; reward is their sum; done at episode_frames."""
        if self._frames is None:
            raise RuntimeError("step() before reset()")
        if self._frames >= self.cfg.episode_frames:
            raise RuntimeError(f"step() after the episode ended ({self._frames} frames); call reset()")
        action = np.asarray(action, np.float32)
        if action.shape != (self.act_dim,):
            raise ValueError(f"action shape {action.shape} != ({self.act_dim},) for {self.cfg.task}")
        scaled = self._act_low + (np.clip(action, -1.0, 1.0) + 1.0) / 2.0 * (self._act_high - self._act_low)
        reward = 0.0
        for _ in range(self.cfg.action_repeat):
            time_step = self._env.step(scaled)
            reward += time_step.reward or 0.0
            self._frames += 1
            if time_step.last():  # the suite's own time limit
                self._frames = self.cfg.episode_frames
                break
        done = self._frames >= self.cfg.episode_frames
        return self._obs(time_step), float(reward), done

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()


@functools.lru_cache(maxsize=None)
def vector_spread(task: str) -> np.ndarray:
    """Standard deviation of each vector observation dimension of `task` over SPREAD_EPISODES
    episodes of uniform random actions (docs/protocol.md section 5): the unit in which vector
    noise levels are given, so a level means the same for a joint angle and a velocity. The
    same for every run of the task, whatever its policy; a constant dimension gets no noise."""
    cfg = EnvConfig(task=task, obs="vector")
    rng = np.random.default_rng(SPREAD_SEED_BASE)
    observations = []
    for k in range(SPREAD_EPISODES):
        env = DMCEnv(cfg, SPREAD_SEED_BASE + k)
        observations.append(env.reset()["vector"])
        done = False
        while not done:
            obs, _, done = env.step(rng.uniform(-1.0, 1.0, env.act_dim).astype(np.float32))
            observations.append(obs["vector"])
        env.close()
    return np.std(np.stack(observations), axis=0).astype(np.float32)


def make_env(cfg: EnvConfig, seed: int, condition: Condition = CLEAN):
    """The task of `cfg` under `condition`.

    Dynamics perturbations wrap the base env, observation perturbations wrap those;
    latent perturbations are for the evaluator and ignored here.
    """
    env = DMCEnv(cfg, seed)
    if condition.dynamics:
        env = DynamicsPerturbation(env, condition.dynamics)
    if condition.observation:
        rng = np.random.default_rng([seed, PERTURBATION_STREAM])
        spread = vector_spread(cfg.task) if cfg.obs == "vector" else None
        env = ObservationPerturbation(env, condition.observation, rng, spread)
    return env
