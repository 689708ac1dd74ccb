"""Env throughput: env frames per second (agent steps x action repeat) summed over a BatchEnv.

For each task and condition (clean and one level per family), standard vs fast
rendering, and the same number of envs run in 1 vs 2 worker processes. Prints a
Markdown table. Env construction and the first steps are not timed.

    python bench/envs.py --steps 200 --envs 2
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

from wmrobust.envs import BatchEnv, EnvConfig, make_env
from wmrobust.perturb import Condition, parse_condition

CONDITIONS = ("clean", "noise=0.1", "rotation=10", "mask=0.25", "mass=1.5", "friction=1.5")
WARMUP_STEPS = 5


def frames_per_second(cfg: EnvConfig, condition: Condition, envs: int, processes: int, steps: int) -> float:
    fns = [functools.partial(make_env, cfg, seed, condition) for seed in range(envs)]
    with BatchEnv(fns, processes) as batch:
        actions = np.random.default_rng(0).uniform(-1, 1, (WARMUP_STEPS + steps, envs, batch.act_dim))
        batch.reset()
        start = None
        for t, action in enumerate(actions.astype(np.float32)):
            if t == WARMUP_STEPS:
                start = time.perf_counter()
            if any(done for _, _, done in batch.step(list(action))):
                raise RuntimeError(f"episode ended at step {t}: use --steps below the episode length")
        seconds = time.perf_counter() - start
    return steps * envs * cfg.action_repeat / seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["walker_walk", "quadruped_walk"])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    parser.add_argument("--steps", type=int, default=200, help="timed agent steps per env (< 500)")
    parser.add_argument("--envs", type=int, default=2, help="envs per BatchEnv, in 1 or 2 processes")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)

    columns = [(render, p) for render in ("standard", "fast") for p in args.processes]
    print(f"env frames per second ({args.envs} envs, {args.steps} agent steps each, action repeat 2)\n")
    print("| task | condition | " + " | ".join(f"{r} {p}p" for r, p in columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    for task in args.tasks:
        for condition in args.conditions:
            cells = []
            for render, processes in columns:
                cfg = EnvConfig(task=task, render=render)
                fps = frames_per_second(cfg, parse_condition(condition), args.envs, processes, args.steps)
                cells.append(f"{fps:.0f}")
            print(f"| {task} | {condition} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
