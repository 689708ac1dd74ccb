"""Evidence that the agent learns on CPU: proprioceptive walker_walk at size `small`.

Trains one run with `wmrobust.train.train` and prints the evaluation
curve (policy mode, fresh eval seeds) next to the return of uniform random actions.
100k frames take about an hour on one core.

    python bench/learning.py [--frames 100000] [--train-ratio 64] [--seed 0] [--run-dir /tmp/wmrobust-learning]
                             [--task cartpole_swingup] [--preset dreamerv3] [--set agent.actor_entropy=1e-3]

While it runs, the curve so far is in <run-dir>/metrics.parquet (rewritten every 5k frames).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from wmrobust.config import merge, resolve
from wmrobust.envs import EnvConfig, make_env
from wmrobust.train import parse_sets, train


def random_return(task: str, episodes: int = 5) -> float:
    returns = []
    for seed in range(episodes):
        env = make_env(EnvConfig(task=task, obs="vector"), 10_000 + seed)
        rng = np.random.default_rng(seed)
        env.reset()
        total, done = 0.0, False
        while not done:
            _, reward, done = env.step(rng.uniform(-1, 1, env.act_dim).astype(np.float32))
            total += reward
        env.close()
        returns.append(total)
    return float(np.mean(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="walker_walk")
    parser.add_argument("--size", default="small")
    parser.add_argument("--preset", default="dreamerv2", choices=["dreamerv2", "dreamerv3"])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--train-ratio", type=float, default=64.0,
                        help="replayed steps per agent step (16x32 batches: 64 = one update every 8 steps)")
    parser.add_argument("--run-dir", type=Path, default=Path("/tmp/wmrobust-learning"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override, e.g. agent.actor_entropy=1e-3 (repeatable)")
    args = parser.parse_args()

    cfg = resolve(merge({
        "env": {"task": args.task, "obs": "vector"},
        "agent": {"preset": args.preset, "size": args.size},
        "train": {"frames": args.frames, "prefill_frames": 5_000, "batch_size": 16, "batch_length": 32,
                  "train_ratio": args.train_ratio, "eval_every_frames": 5_000, "eval_episodes": 2,
                  "log_every_frames": 5_000, "device": "cpu", "threads": args.threads},
        "seed": args.seed,
    }, parse_sets(args.sets)))
    shutil.rmtree(args.run_dir, ignore_errors=True)
    start = time.time()
    status = train(cfg, args.run_dir, progress=False)
    minutes = (time.time() - start) / 60
    df = pd.read_parquet(args.run_dir / "metrics.parquet")
    curve = df[df.split == "eval"].groupby("frames")["return"].mean()
    # (not named `train`: that would shadow the imported function for all of main())
    episodes = df[df.split == "train"]
    train_curve = episodes.groupby((episodes.frames - 1) // 5_000 * 5_000 + 5_000)["return"].mean()
    updates = df[df.split == "update"]

    print(f"## Learning: {args.task} (vector obs), {args.preset} preset, size {args.size}, seed {args.seed}\n")
    print(f"status {status}; {args.frames} frames in {minutes:.1f} min; "
          f"{int(updates['updates'].max())} updates; random policy return {random_return(args.task):.1f}\n")
    print("| frames | eval return (mean of 2) | train return (episodes ending in the preceding 5k frames) |")
    print("|---:|---:|---:|")
    for frames, value in curve.items():
        print(f"| {frames} | {value:.1f} | {train_curve.get(frames, float('nan')):.1f} |")


if __name__ == "__main__":
    main()
