"""Evaluate a trained run under perturbations, and collect held-out episodes.

The episodes themselves run in `wmrobust.episodes` (batched, reproducible per
(condition, seed) whatever the worker count).
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from wmrobust.envs.config import EnvConfig
from wmrobust.episodes import EVALUATION_SEED_BASE, AgentPolicy, Job, RandomPolicy, evaluation_seeds, run_episodes
from wmrobust.io import atomic_path, write_table
from wmrobust.perturb import CLEAN, FAMILIES, Condition, SpecError, parse_condition, sweep
from wmrobust.rundir import RunError, TrainedRun, load_agent, load_trained



def env_config(run: TrainedRun, episode_frames: int | None) -> EnvConfig:
    """The run's env, with the episode length overridden when given."""
    if episode_frames is None:
        return run.cfg.env
    try:
        return dataclasses.replace(run.cfg.env, episode_frames=int(episode_frames))
    except ValueError as err:
        raise SpecError(f"episode_frames={episode_frames}: {err}") from None


def env_spaces(cfg: EnvConfig) -> tuple[dict, int]:
    """Observation space and action size of the task (one throwaway env)."""
    from wmrobust.envs import make_env

    env = make_env(cfg, 0)
    spaces = env.obs_space, env.act_dim
    env.close()
    return spaces


def finite_weights(agent) -> bool:
    return all(bool(np.isfinite(t.detach().cpu().numpy()).all()) for t in agent.state_dict().values()
               if t.is_floating_point())


# ---------------------------------------------------------------------------
# Conditions and seeds.


def protocol_conditions(obs: str = "pixels") -> list[Condition]:
    """docs/protocol.md section 5: clean, then every family at its default levels (image-only
    families dropped for vector observations)."""
    return sweep({name: family.levels for name, family in FAMILIES.items()
                  if not (obs == "vector" and family.images_only)})


def check_conditions(conditions: list[Condition], obs: str) -> list[Condition]:
    """The conditions without repeats (clean once), checked against the observation type."""
    from wmrobust.perturb.observation import check_observation_perturbations

    if not conditions:
        raise SpecError("no conditions to evaluate")
    for condition in conditions:
        check_observation_perturbations(condition.observation, "image" if obs == "pixels" else "vector")
    return list(dict.fromkeys(conditions))


def check_seeds(seeds: list[int]) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise SpecError("no episode seeds")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"episode seeds repeat: {seeds}")
    return seeds


# ---------------------------------------------------------------------------
# evaluate and collect.


def evaluate(run_dir: Path, out: Path, *, variant: str, conditions: list[Condition], episode_seeds: list[int],
             episode_frames: int | None = None, workers: int = 1, progress: bool | None = None) -> pd.DataFrame:
    """Return of the run's final policy (mode actions) for every condition and episode seed,
    written to `out` as one row per (condition, episode). A diverged run gives the same rows
    with NaN returns, without loading its model."""
    if Path(out).suffix not in (".parquet", ".csv"):  # before any episode runs
        raise SpecError(f"--out {out}: unsupported table format {Path(out).suffix!r} (use .parquet or .csv)")
    run = load_trained(run_dir)
    cfg = env_config(run, episode_frames)
    conditions = check_conditions(conditions, cfg.obs)
    seeds = check_seeds(episode_seeds)
    jobs = [Job(c, s) for c in conditions for s in seeds]
    if run.diverged:
        returns = [float("nan")] * len(jobs)
    else:
        obs_space, act_dim = env_spaces(cfg)
        agent = load_agent(run, obs_space, act_dim)
        returns, _ = run_episodes(AgentPolicy(agent), cfg, jobs, workers=workers, progress=progress)
    identity = run.cfg.id_columns(variant)
    rows = [
        {**identity, "condition": job.condition.label, "family": job.condition.family,
         "level": job.condition.level, "episode": k % len(seeds), "episode_seed": job.seed,
         "return": ret, "status": run.status["status"]}
        for k, (job, ret) in enumerate(zip(jobs, returns))
    ]
    df = pd.DataFrame(rows)
    write_table(df, out, config_hash=run.cfg.hash(), variant=variant, run_dir=str(run.path),
                episode_frames=cfg.episode_frames)
    return df


def collect(run_dir: Path, out: Path, *, episode_seeds: list[int], episode_frames: int | None = None,
            workers: int = 1) -> None:
    """Held-out episodes of the run's final policy (mode actions, clean env) on `episode_seeds`,
    saved to `out` (.npz) stacked (N, T, ...) in the replay layout, with metadata arrays
    episode_seeds, task, config_hash, policy ('agent' | 'random').

    A diverged run is still collected with its weights when they are finite (they are
    its last finite weights); otherwise with uniform random actions, with a warning."""
    run = load_trained(run_dir)
    cfg = env_config(run, episode_frames)
    seeds = check_seeds(episode_seeds)
    obs_space, act_dim = env_spaces(cfg)
    policy, name = None, "agent"
    try:
        agent = load_agent(run, obs_space, act_dim)
    except RunError as err:
        if not run.diverged:
            raise
        reason = str(err)
    else:
        if run.diverged and not finite_weights(agent):
            reason = f"{run.model_path}: weights are not finite"
        else:
            policy = AgentPolicy(agent)
    if policy is None:
        warnings.warn(f"{run.path}: run diverged and its policy is unusable ({reason}); "
                      "collecting held-out episodes with uniform random actions", stacklevel=2)
        policy, name = RandomPolicy(act_dim), "random"
    jobs = [Job(CLEAN, s) for s in seeds]
    _, episodes = run_episodes(policy, cfg, jobs, workers=workers, record=True)
    arrays = {key: np.stack([e[key] for e in episodes]) for key in episodes[0]}
    arrays.update(episode_seeds=np.array(seeds, np.int64), task=np.array(cfg.task),
                  config_hash=np.array(run.cfg.hash()), policy=np.array(name))
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a path
            np.savez_compressed(f, **arrays)


# ---------------------------------------------------------------------------
# Command line.


def _parser(command: str) -> argparse.ArgumentParser:
    what = ("evaluate a trained run under perturbation conditions" if command == "evaluate"
            else "collect held-out episodes with a run's final policy (clean env, mode actions)")
    parser = argparse.ArgumentParser(prog=f"wmrobust {command}", description=what)
    parser.add_argument("--run-dir", type=Path, required=True, help="run directory (config.yaml, status.json, model.pt)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output table (.parquet or .csv)" if command == "evaluate" else "output .npz")
    if command == "evaluate":
        parser.add_argument("--variant", required=True, help="variant name (the identity column)")
        parser.add_argument("--conditions", nargs="+", metavar="SPEC",
                            help="e.g. clean noise=0.1 mass=1.5 (default: every docs/protocol.md section 5 condition)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--episodes", type=int, default=10,
                       help=(f"episodes per condition, seeds {EVALUATION_SEED_BASE} + k (default 10)" if command == "evaluate"
                             else f"episodes to collect, seeds {EVALUATION_SEED_BASE} + k (default 10)"))
    seeds.add_argument("--episode-seeds", type=int, nargs="+", metavar="SEED", help="explicit episode seeds")
    parser.add_argument("--episode-frames", type=int, help="override the run's env.episode_frames")
    parser.add_argument("--workers", type=int, default=1, help="env worker processes (default 1)")
    return parser


def cli(command: str, argv: list[str]) -> int:
    args = _parser(command).parse_args(argv)
    if args.workers < 1:
        raise SpecError(f"--workers {args.workers} must be >= 1")
    if args.episodes < 1:
        raise SpecError(f"--episodes {args.episodes} must be >= 1")
    seeds = args.episode_seeds or evaluation_seeds(args.episodes)
    if command == "evaluate":
        if args.conditions is None:
            conditions = protocol_conditions(load_trained(args.run_dir).cfg.env.obs)
        else:
            conditions = [parse_condition(spec) for spec in args.conditions]
        evaluate(args.run_dir, args.out, variant=args.variant, conditions=conditions, episode_seeds=seeds,
                 episode_frames=args.episode_frames, workers=args.workers)
    else:
        collect(args.run_dir, args.out, episode_seeds=seeds, episode_frames=args.episode_frames,
                workers=args.workers)
    return 0
