"""Evidence that the agent learns: walker_walk (proprioceptive by default), several seeds.

Trains one run per seed with `wmrobust.train.train` (each in its own process, ``--jobs`` at
a time, one torch thread each by default) and prints, per seed, the evaluation return
(policy mode, ``--eval-episodes`` fresh episodes every ``--eval-every`` frames) with the
CPU-minutes the run took, beside the published DreamerV3 per-seed returns from vector
observations at the same frames (wmrobust.published) and the return of
uniform random actions.

    python bench/learning.py                                  # 3 seeds, 100k frames, 2 at a time
    python bench/learning.py --seeds 0 --frames 50000 --train-ratio 128 --batch 16x64
    python bench/learning.py --set agent.imag_starts=256 --set agent.actor_lr=2e-4

While it runs, each seed's curve so far is in <run-root>/seed<k>/metrics.parquet. Rerunning the
same command resumes unfinished seeds from their checkpoints (a run directory holding another
config is refused: use another --run-root).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from wmrobust.config import merge, resolve
from wmrobust.envs import EnvConfig, make_env
from wmrobust.published import published_curves
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


def published(task: str, obs: str = "vector") -> pd.DataFrame:
    """Published DreamerV3 per-seed returns: rows frames, columns seeds."""
    return published_curves(task, obs).pivot(index="frames", columns="seed", values="return")


def returns(metrics: Path) -> pd.DataFrame:
    """Per evaluation point (frames): the evaluation return, and the mean return of the training
    episodes that ended since the previous evaluation point."""
    df = pd.read_parquet(metrics)
    evals = df[df.split == "eval"].groupby("frames")["return"].mean()
    train = df[df.split == "train"]
    edges = [-1, *evals.index]
    windows = pd.cut(train["frames"], edges, labels=evals.index)
    return pd.DataFrame({"eval": evals, "train": train.groupby(windows, observed=False)["return"].mean()})


def run_seed(overrides: dict, run_dir: Path) -> tuple[str, float, float]:
    """Train (or resume from its checkpoint, or find finished) one run; returns (status, CPU
    minutes, wall minutes) of this process: a resumed run's figures cover the last session only."""
    cpu, wall = time.process_time(), time.time()
    status = train(resolve(overrides), run_dir, progress=False)
    return status, (time.process_time() - cpu) / 60, (time.time() - wall) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="walker_walk")
    parser.add_argument("--obs", default="vector", choices=["vector", "pixels"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="small")
    parser.add_argument("--preset", default="dreamerv2", choices=["dreamerv2", "dreamerv3"])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--train-ratio", type=float, default=256.0, help="replayed steps per agent step")
    parser.add_argument("--batch", default="16x64", help="replay batch, sequences x steps")
    parser.add_argument("--imag-starts", type=int, default=256,
                        help="posterior states that start imagination (0: all, as the references)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2, help="seeds trained at once (one process each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--eval-every", type=int, default=10_000, help="env frames between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--run-root", type=Path, default=Path("/tmp/wmrobust-learning"))
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override, e.g. agent.actor_entropy=1e-3 (repeatable)")
    args = parser.parse_args()
    batch_size, batch_length = (int(x) for x in args.batch.split("x"))

    base = merge({
        "env": {"task": args.task, "obs": args.obs},
        "agent": {"preset": args.preset, "size": args.size, "imag_starts": args.imag_starts},
        "train": {"frames": args.frames, "prefill_frames": 5_000, "batch_size": batch_size,
                  "batch_length": batch_length, "train_ratio": args.train_ratio,
                  "eval_every_frames": args.eval_every, "eval_episodes": args.eval_episodes,
                  "log_every_frames": 5_000, "device": args.device, "threads": args.threads},
    }, parse_sets(args.sets))
    resolve(base)  # a bad override fails now, not in a worker
    runs = {seed: args.run_root / f"seed{seed}" for seed in args.seeds}
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {seed: pool.submit(run_seed, merge(base, {"seed": seed}), path) for seed, path in runs.items()}
        results = {seed: future.result() for seed, future in futures.items()}

    both = {seed: returns(path / "metrics.parquet") for seed, path in runs.items()}
    curves = {seed: b["eval"] for seed, b in both.items()}
    table = pd.DataFrame(curves)
    reference = published(args.task, args.obs)

    print(f"## Learning: {args.task} ({args.obs}, {args.device}), {args.preset} preset, size {args.size}, batch {args.batch}, "
          f"train ratio {args.train_ratio:g}, imag_starts {args.imag_starts}, {' '.join(args.sets) or 'no overrides'}\n")
    print(f"random policy return {random_return(args.task):.1f}; eval: mean of {args.eval_episodes} episodes, "
          f"policy mode; published: DreamerV3 from {args.obs} (train ratio 512, ~16M-parameter world model)\n")
    print("Each seed: evaluation return / mean return of the training episodes since the last evaluation "
          "(the official score files log the latter).\n")
    print("| frames | " + " | ".join(f"seed {s} eval / train" for s in table.columns) + " | published V3 seeds |")
    print("|---:|" + "---:|" * len(table.columns) + "---|")
    for frames in table.index:
        ref = reference.loc[frames].round(0).astype(int).tolist() if frames in reference.index else []
        cells = [f"{both[s]['eval'].get(frames, float('nan')):.0f} / {both[s]['train'].get(frames, float('nan')):.0f}"
                 for s in table.columns]
        print(f"| {frames} | " + " | ".join(cells) + f" | {' / '.join(map(str, ref))} |")
    print("\n| seed | status | CPU min | wall min | return at 50k | return at end |")
    print("|---:|---|---:|---:|---:|---:|")
    for seed, (status, cpu, wall) in results.items():
        curve = curves[seed]
        at50 = curve.get(50_000, float("nan"))
        print(f"| {seed} | {status} | {cpu:.1f} | {wall:.1f} | {at50:.0f} | {curve.iloc[-1]:.0f} |")


if __name__ == "__main__":
    main()
