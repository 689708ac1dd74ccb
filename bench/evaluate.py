"""Evaluation throughput: episodes per second for every docs/protocol.md section 5 condition
(clean + 22 family/levels) of one pixel checkpoint, 1 vs 2 env worker processes, fast
rendering. Prints a Markdown table. (The policy runs on one torch thread: see
`wmrobust.episodes.run_episodes`.)

The checkpoint is a tiny walker_walk run trained briefly here (speed does not depend
on what it learned), or an existing run directory (--run-dir). Wall time includes
env construction and worker start-up, as in `wmrobust evaluate`.

    python bench/evaluate.py [--episodes 2] [--episode-frames 200] [--size tiny] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from wmrobust.config import resolve
from wmrobust.episodes import evaluation_seeds
from wmrobust.evaluate import evaluate, protocol_conditions
from wmrobust.train import train


def tiny_checkpoint(folder: Path, size: str) -> Path:
    cfg = resolve({
        "env": {"task": "walker_walk", "render": "fast", "episode_frames": 200},
        "agent": {"size": size},
        "train": {"frames": 600, "prefill_frames": 400, "train_ratio": 16, "eval_every_frames": 0,
                  "log_every_frames": 200, "device": "cpu"},
    })
    run_dir = folder / "run"
    train(cfg, run_dir, progress=False)
    return run_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="existing finished pixel run (default: train a tiny one)")
    parser.add_argument("--size", default="tiny", help="agent.size of the trained checkpoint")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per condition")
    parser.add_argument("--episode-frames", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)

    conditions = protocol_conditions("pixels")
    seeds = evaluation_seeds(args.episodes)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_dir = args.run_dir or tiny_checkpoint(tmp, args.size)
        episodes = len(conditions) * len(seeds)
        print(f"{episodes} episodes ({len(conditions)} conditions x {len(seeds)} seeds) of "
              f"{args.episode_frames} frames, {run_dir}\n")
        print("| workers | seconds | episodes/s | env frames/s |")
        print("|---|---|---|---|")
        for workers in args.workers:
            start = time.perf_counter()
            evaluate(run_dir, tmp / "eval.parquet", variant="bench", conditions=conditions, episode_seeds=seeds,
                     episode_frames=args.episode_frames, workers=workers, progress=False)
            seconds = time.perf_counter() - start
            print(f"| {workers} | {seconds:.1f} | {episodes / seconds:.2f} | "
                  f"{episodes * args.episode_frames / seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
