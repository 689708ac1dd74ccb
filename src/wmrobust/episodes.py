"""Running policy episodes for evaluation and held-out collection.

Every episode runs in a fresh env built from the episode seed (``make_env(cfg,
seed, condition)``), so an episode is fixed by (condition, seed). Episodes are
stepped together: one `BatchEnv` holds up to ``CHUNK`` episodes of any
conditions, spread over ``workers`` processes, and the policy acts on all of them
with one batched ``agent.act`` call per distinct latent error in the chunk.
Conditions travel to the env workers as `Condition` objects.
Chunks are cut from the job list independently of ``workers``, and torch is
seeded per chunk from its contents, so a result depends on the job list alone:
the same call gives the same returns whatever the worker count. (The agent
samples its posterior latent even in eval mode, so the torch seed matters.)
"""

from __future__ import annotations

import functools
import sys
import zlib
from dataclasses import dataclass

import numpy as np

from wmrobust.agent.config import LatentErrorConfig
from wmrobust.envs.config import EnvConfig
from wmrobust.perturb import Condition, SpecError
from wmrobust.progress import LogLines

EVALUATION_SEED_BASE = 1_000_000
"""Evaluation episode k of every condition and run, and held-out episode k, use env seed
base + k, so every variant faces the same episodes (training episode seeds are hashed from
the run seed: wmrobust.train.episode_seed)."""
CHUNK = 16
"""Most episodes stepped together in one BatchEnv. Bounds memory: a pixel env with its EGL
renderer holds about 80 MB, so 16 stay near 1.3 GB; the policy step is cheap enough that
larger batches gain little (bench/evaluate.py)."""


def zero_drift_error(sigma2: float) -> LatentErrorConfig:
    """The latent family's implementation: a zero-drift latent error of variance sigma2."""
    return LatentErrorConfig(kind="zero_drift", sigma2=sigma2) if sigma2 > 0 else LatentErrorConfig()


def latent_error(condition: Condition) -> LatentErrorConfig:
    """The agent's test-time latent error under `condition` (none without a latent perturbation)."""
    if len(condition.latent) > 1:
        raise SpecError(f"{condition.label}: the agent takes one latent error at a time")
    return next((p.definition.apply(p.level) for p in condition.latent), LatentErrorConfig())


class AgentPolicy:
    """The agent's mode action; the latent error of each call is the test-time error."""

    def __init__(self, agent):
        self.agent = agent

    def initial(self, n: int):
        return self.agent.initial_state(n)

    def __call__(self, obs: dict, state, error: LatentErrorConfig):
        return self.agent.act(obs, state, mode="eval", latent_error=error)


class RandomPolicy:
    """Uniform random actions in [-1, 1] (held-out data when the baseline has no usable weights)."""

    def __init__(self, act_dim: int):
        self.act_dim = act_dim

    def initial(self, n: int):
        return n

    def __call__(self, obs: dict, state, error: LatentErrorConfig):
        return self.rng.uniform(-1, 1, (state, self.act_dim)).astype(np.float32), state

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


def evaluation_seeds(episodes: int) -> list[int]:
    return [EVALUATION_SEED_BASE + k for k in range(episodes)]


@dataclass(frozen=True)
class Job:
    condition: Condition
    seed: int


def _chunk_seed(jobs: list[Job]) -> int:
    return zlib.crc32(repr([(j.condition.label, j.seed) for j in jobs]).encode())


def _stack(obs: list[dict], is_first: bool) -> dict[str, np.ndarray]:
    batch = {key: np.stack([o[key] for o in obs]) for key in obs[0]}
    batch["is_first"] = np.full(len(obs), is_first)
    return batch


def run_episodes(policy, cfg: EnvConfig, jobs: list[Job], *, workers: int = 1, record: bool = False,
                 progress: bool | None = None) -> tuple[list[float], list[dict[str, np.ndarray]]]:
    """Returns of `jobs` (one episode each), in order; with `record`, also each episode in
    the replay layout (obs, action, reward, is_first, is_terminal; length steps + 1)."""
    import torch

    # One torch thread: the batched policy step is small next to rendering, and more
    # threads spin against the env workers. Thread count and RNG state are restored.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            return _run_chunks(policy, cfg, jobs, workers, record, progress)
    finally:
        torch.set_num_threads(threads)


def _run_chunks(policy, cfg: EnvConfig, jobs: list[Job], workers: int, record: bool, progress: bool | None):
    import torch
    from tqdm import tqdm

    from wmrobust.envs import BatchEnv, make_env

    steps = -(-cfg.episode_frames // cfg.action_repeat)
    on_terminal = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(jobs) * steps, unit="step", desc="episodes", leave=False, disable=not on_terminal)
    lines, stepped = LogLines(), 0  # a disabled bar counts nothing
    returns: list[float] = []
    episodes: list[dict[str, np.ndarray]] = []
    for start in range(0, len(jobs), CHUNK):
        chunk = jobs[start : start + CHUNK]
        seed = _chunk_seed(chunk)
        torch.manual_seed(seed)
        if isinstance(policy, RandomPolicy):
            policy.seed(seed)
        # One policy state (and one act call per step) per distinct latent error.
        groups: dict[LatentErrorConfig, list[int]] = {}
        for i, job in enumerate(chunk):
            groups.setdefault(latent_error(job.condition), []).append(i)
        fns = [functools.partial(make_env, cfg, job.seed, job.condition) for job in chunk]
        with BatchEnv(fns, processes=min(workers, len(fns))) as envs:
            obs = envs.reset()
            states = {error: policy.initial(len(idx)) for error, idx in groups.items()}
            total = np.zeros(len(chunk))
            trace = [[(o, np.zeros(envs.act_dim, np.float32), 0.0)] for o in obs] if record else None
            done = np.zeros(len(chunk), bool)
            first = True
            while not done.all():
                actions = np.zeros((len(chunk), envs.act_dim), np.float32)
                for error, idx in groups.items():
                    act, states[error] = policy(_stack([obs[i] for i in idx], first), states[error], error)
                    actions[idx] = act
                results = envs.step(list(actions))
                obs = [r[0] for r in results]
                total += [r[1] for r in results]
                dones = np.array([r[2] for r in results])
                if dones.any() != dones.all():
                    raise RuntimeError(f"episodes of {cfg.task} ended at different steps; evaluation "
                                       "steps episodes in lockstep and needs fixed-length episodes")
                done = dones
                if record:
                    for i, r in enumerate(results):
                        trace[i].append((r[0], actions[i], r[1]))
                first = False
                bar.update(len(chunk))
                stepped += len(chunk)
                if not on_terminal and lines.due():
                    lines.print(f"episodes {start}/{len(jobs)} done, {len(chunk)} under way · "
                                f"{lines.eta(stepped, len(jobs) * steps)}")
        returns += total.tolist()
        if record:
            episodes += [_episode(t) for t in trace]
    bar.close()
    if not on_terminal:
        lines.print(f"{len(jobs)} episodes of {steps} steps ({cfg.task}) in {lines.elapsed()}")
    return returns, episodes


def _episode(trace: list[tuple[dict, np.ndarray, float]]) -> dict[str, np.ndarray]:
    key = next(iter(trace[0][0]))
    length = len(trace)
    return {
        key: np.stack([o[key] for o, _, _ in trace]),
        "action": np.stack([a for _, a, _ in trace]).astype(np.float32),
        "reward": np.array([r for _, _, r in trace], np.float32),
        "is_first": np.arange(length) == 0,
        "is_terminal": np.zeros(length, bool),  # DMC episodes end by time limit only
    }
