"""Learner cost per size: seconds and FLOPs per update, peak memory, parameter counts.

One update = world-model step on a 16x64 batch of sequences (64x64 pixels, or walker's
24-dimensional vector with ``--obs vector``) plus actor-critic on imagined rollouts of 15
steps from all B*T posterior states (``--imag-starts``: a random subset). Each
configuration runs in its own process (so peak RSS is its own). Rows: without the
Jacobian penalty, with the projection estimator (k=1), and with the exact estimator (tiny
and small only); each in float32 and, with ``--precisions float32 bfloat16``, in bfloat16
autocast (the mixed precision the original DreamerV2/V3 train in; fast on CPUs with
AVX512-BF16 or AMX); eager and, with ``--modes eager compiled``, with ``train.compile``
(its compile time is the first update's extra seconds); per thread count of ``--threads``.

    python bench/learner.py                     # tiny and small (quick)
    python bench/learner.py --sizes S --precisions float32 bfloat16   # the S size (minutes)
    python bench/learner.py --sizes tiny small S --preset dreamerv2
    python bench/learner.py --obs vector --sizes small --preset dreamerv2 --imag-starts 256 \
        --modes eager compiled --threads 1 2 --jacobians none    # the local scale's learner

GFLOP/s are compared with this machine's float32 matmul peak, measured first (4096^3
matmuls; 130 GFLOP/s on the idle 2-core development machine on 2026-11-22).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

REFERENCE_S_SECONDS = 12.2  # a popular PyTorch port at size S, same batch and imagination, this machine


def matmul_gflops(threads: int, dtype: str, m: int, k: int, n: int, device: str = "cpu", repeats: int = 10) -> float:
    """GFLOP/s of an (m, k) @ (k, n) matmul."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(m, k, device=device).to(getattr(torch, dtype))
    b = torch.randn(k, n, device=device).to(getattr(torch, dtype))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9


def measure(preset: str, size: str, jacobian: str, precision: str, batch: int, length: int, repeats: int,
            threads: int, device: str = "cpu", obs: str = "pixels", mode: str = "eager", imag_starts: int = 0) -> dict:
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from wmrobust.agent import Agent
    from wmrobust.train import tune_cpu
    from wmrobust.config import resolve

    tune_cpu()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    jac = {"weight": 0.0} if jacobian == "none" else {"weight": 0.01, "estimator": jacobian, "probes": 1}
    cfg = resolve({"agent": {"preset": preset, "size": size, "jacobian": jac, "imag_horizon": 15,
                             "imag_starts": imag_starts}}).agent
    act_dim = 6
    space = {"image": ((64, 64, 3), np.uint8)} if obs == "pixels" else {"vector": ((24,), np.float32)}
    agent = Agent(space, act_dim, cfg, device, precision, compile=mode == "compiled")
    if mode == "compiled" and not agent.compiled:
        raise SystemExit("train.compile fell back to eager here: no compiled row to measure")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    key, shape = next(iter(space.items()))
    data = {key: (rng.integers(0, 256, (batch, length, *shape[0]), dtype=np.uint8) if obs == "pixels"
                  else rng.normal(size=(batch, length, *shape[0])).astype(np.float32)),
            "action": rng.uniform(-1, 1, (batch, length, act_dim)).astype(np.float32),
            "reward": rng.normal(size=(batch, length)).astype(np.float32),
            "is_first": np.zeros((batch, length), bool), "is_terminal": np.zeros((batch, length), bool)}
    data["is_first"][:, 0] = True

    start = time.perf_counter()
    agent.update(data)  # warm-up: allocator, lazy initialization, compilation
    sync()
    first = time.perf_counter() - start
    if mode == "eager":
        with FlopCounterMode(display=False) as counter:
            agent.update(data)
        flops = counter.get_total_flops()
    else:  # the same arithmetic as eager; counting would trace the compiled graphs again
        agent.update(data)
        flops = float("nan")
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        agent.update(data)
    sync()
    seconds = (time.perf_counter() - start) / repeats

    def count(module):
        return sum(p.numel() for p in module.parameters())

    return {"preset": preset, "size": size, "jacobian": jacobian, "precision": precision, "obs": obs, "mode": mode,
            "threads": threads, "imag_starts": imag_starts, "seconds": seconds, "compile_s": first - seconds,
            "tflop": flops / 1e12,
            "gflops": flops / seconds / 1e9, "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "wm_params": count(agent.world_model), "actor_params": count(agent.behavior.actor),
            "critic_params": count(agent.behavior.critic)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=["tiny", "small", "1m", "S", "default"])
    parser.add_argument("--preset", default="dreamerv3", choices=["dreamerv2", "dreamerv3"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=0, help="timed updates (0: 10 for tiny/small, 3 for S)")
    parser.add_argument("--precisions", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--obs", nargs="+", default=["pixels"], choices=["pixels", "vector"])
    parser.add_argument("--modes", nargs="+", default=["eager"], choices=["eager", "compiled"],
                        help="eager, and/or compiled (train.compile)")
    parser.add_argument("--imag-starts", type=int, default=0, help="posterior states that start imagination (0: all)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--jacobians", nargs="+", default=None, choices=["none", "projection", "exact"],
                        help="Jacobian estimators to measure (default: none, projection, and exact at tiny/small)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one JSON-encoded configuration
    args = parser.parse_args()

    if args.one:
        print(json.dumps(measure(**json.loads(args.one))))
        return
    dtypes = list(dict.fromkeys(["float32", *args.precisions]))
    threads = max(args.threads)
    peak = {dtype: matmul_gflops(threads, dtype, 4096, 4096, 4096, args.device) for dtype in dtypes}
    # A typical matmul of the update at S: 1,024 imagined states through a 1,536 -> 1,536 layer.
    typical = {dtype: matmul_gflops(threads, dtype, 1024, 1536, 1536, args.device) for dtype in dtypes}
    rows, loads = [], [os.getloadavg()[0]]
    for obs in args.obs:
        for size in args.sizes:
            repeats = args.repeats or (10 if size in ("tiny", "small", "1m") else 3)
            for precision in args.precisions:
                jacobians = args.jacobians or ["none", "projection"] + (["exact"] if size in ("tiny", "small") else [])
                for jacobian in jacobians:
                    for mode in args.modes:
                        for n in args.threads:
                            one = dict(preset=args.preset, size=size, jacobian=jacobian, precision=precision,
                                       batch=args.batch, length=args.length, repeats=repeats, threads=n,
                                       device=args.device, obs=obs, mode=mode, imag_starts=args.imag_starts)
                            out = subprocess.run([sys.executable, __file__, "--one", json.dumps(one)],
                                                 capture_output=True, text=True, check=True)
                            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                            loads.append(os.getloadavg()[0])
                            print(f"measured {obs} {size} {precision} {jacobian} {mode} {n} threads: "
                                  f"{rows[-1]['seconds']:.3f} s/update", file=sys.stderr)

    starts = f"{args.imag_starts} random" if args.imag_starts else "all B*T"
    print(f"## Learner cost per update ({args.preset}, batch {args.batch}x{args.length}, "
          f"imagination 15 steps from {starts} states, {args.device}, load average "
          f"{min(loads):.1f}-{max(loads):.1f} over the measurements)\n")
    print("Matmul GFLOP/s here, 4096^3 (the peak) / 1024x1536x1536 (a typical matmul of the update): "
          + ", ".join(f"{d} {peak[d]:.0f} / {typical[d]:.0f}" for d in dtypes)
          + f". Speed-up: against {REFERENCE_S_SECONDS} s/update of a popular PyTorch port at S.\n")
    print("| obs | size | precision | Jacobian | mode | threads | s/update | compile s | Jacobian overhead | speed-up "
          "| TFLOP/update | GFLOP/s | of fp32 peak | peak RSS GB | WM params | actor | critic |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = {(r["obs"], r["size"], r["precision"], r["mode"], r["threads"]): r["seconds"]
            for r in rows if r["jacobian"] == "none"}
    flops = {(r["obs"], r["size"], r["jacobian"]): r["tflop"] for r in rows if r["mode"] == "eager"}
    for r in rows:
        overhead = r["seconds"] / base.get((r["obs"], r["size"], r["precision"], r["mode"], r["threads"]),
                                           r["seconds"]) - 1
        speedup = f"{REFERENCE_S_SECONDS / r['seconds']:.2f}x" if r["size"] == "S" and r["obs"] == "pixels" else ""
        tflop = flops.get((r["obs"], r["size"], r["jacobian"]), float("nan"))
        gflops = tflop * 1e3 / r["seconds"]
        compile_s = f"{r['compile_s']:.0f}" if r["mode"] == "compiled" else ""
        print(f"| {r['obs']} | {r['size']} | {r['precision']} | {r['jacobian']} | {r['mode']} | {r['threads']} "
              f"| {r['seconds']:.3f} | {compile_s} | {overhead:+.0%} | {speedup} "
              f"| {tflop:.3f} | {gflops:.1f} | {gflops / peak['float32']:.0%} "
              f"| {r['rss_gb']:.2f} | {r['wm_params'] / 1e6:.2f}M | {r['actor_params'] / 1e6:.2f}M "
              f"| {r['critic_params'] / 1e6:.2f}M |")


if __name__ == "__main__":
    main()
