"""DeepMind Control suite tasks as pixel or proprioceptive envs, and `make_env`.

Seeding: an env's task randomness (initial poses) comes from ``task_kwargs={'random': seed}``,
and the observation perturbations draw from a generator seeded with the same seed. So
the k-th episode of ``make_env(cfg, seed, condition)`` is the same every time; in
particular a fresh env per episode seed gives a reproducible episode per seed.
Resetting does not reseed: later episodes of one env continue the seed's streams.
"""

from __future__ import annotations

import atexit
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
        self._frames = None  # None until the first reset

    @property
    def physics(self):
        return self._env.physics

    def render(self) -> np.ndarray:
        """The current frame from the env's camera, uint8 (size, size, 3).

        With the stock scene flags the pixels equal dm_control's ``physics.render``.
        render='fast' turns shadows and reflections off in the scene, which changes what
        the agent sees.
        """
        model = self.physics.model.ptr
        return Camera.of(self.cfg, model).render(model, self.physics.data.ptr, self.camera)

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
        self._env.close()


class Camera:
    """Offscreen rendering of one task at one size, shared by every env of the task in
    this process.

    Every episode runs in a fresh env, and a fresh ``mujoco.Renderer`` costs ~0.5 CPU-s
    (GL context, textures and meshes uploaded to Mesa, the first frame's setup), as much
    as rendering a smoke episode. What the GL side holds depends only on the task's
    model file, never on the physical parameters a perturbation scales, so one is kept
    per task, size and render mode; each frame is laid out from the env's own model and
    data. The calls are ``mujoco.Renderer``'s, so the pixels are the same.
    """

    _shared: dict[tuple, Camera] = {}

    @classmethod
    def of(cls, cfg: EnvConfig, model: mujoco.MjModel) -> Camera:
        """The camera of ``cfg``'s task, size and render mode, made from ``model`` if new."""
        # A forked child cannot use its parent's GL context (BatchEnv spawns instead).
        key = (os.getpid(), cfg.task, cfg.image_size, cfg.render)
        if key not in cls._shared:
            cls._shared[key] = cls(cfg, model)
            # Freed before the interpreter tears EGL down (which would print tracebacks).
            atexit.register(cls._shared[key].close)
        return cls._shared[key]

    def __init__(self, cfg: EnvConfig, model: mujoco.MjModel):
        size = cfg.image_size
        try:
            self._gl = mujoco.GLContext(size, size)
            self._gl.make_current()
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        except (AttributeError, RuntimeError, mujoco.FatalError) as error:
            raise RuntimeError(
                f"cannot render {cfg.task} ({error}); MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} "
                "must name a headless backend (egl or osmesa) before mujoco is first imported"
            ) from error
        # 1000 scene geoms is plenty for the suite; the default 10000 takes ~0.15 s to allocate.
        self._scene = mujoco.MjvScene(model, maxgeom=1000)
        if cfg.render == "fast":
            self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._option = mujoco.MjvOption()
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._rect = mujoco.MjrRect(0, 0, size, size)
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED

    def render(self, model, data, camera: int) -> np.ndarray:
        self._gl.make_current()
        self._camera.fixedcamid = camera
        mujoco.mjv_updateScene(model, data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL,
                               self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        image = np.empty((self._rect.height, self._rect.width, 3), np.uint8)
        mujoco.mjr_readPixels(image, None, self._rect, self._context)
        return np.ascontiguousarray(image[::-1])  # GL rows run bottom to top

    def close(self) -> None:
        self._context.free()
        self._gl.free()


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
