"""`wmrobust train`: train one run into a run directory, resumably.

The loop: collect one agent step (random actions during prefill, then the policy in
explore mode), add finished episodes to replay, run the updates the train ratio owes,
evaluate (policy mode, fresh eval seeds) and log on frame schedules.

Resuming is exact: a checkpoint can be taken after any agent step, update or evaluation
episode (``wmrobust.checkpoint`` says what it holds; a resumed run first does what the stop
left undone at its agent step), so with the same seed on CPU an interrupted-and-resumed run
writes the same metrics (but wall time and throughput) as an uninterrupted one.

SIGTERM/SIGINT: the current agent step, update or evaluation episode finishes (seconds in
every phase: prefill, pretrain, training, evaluation), a checkpoint is saved and the process
exits 143, so schedulers count the job as not done and rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import random
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from wmrobust import rundir
from wmrobust.checkpoint import STATE, CheckpointError, load_checkpoint, save_checkpoint
from wmrobust.config import ConfigError, RunConfig, config_hash, merge, read_yaml, resolve, save_yaml
from wmrobust.io import atomic_write_json, file_digest, provenance, write_table
from wmrobust.progress import LogLines, duration

TRAIN, EVAL = 0, 1  # seed streams of training and evaluation episodes
EXIT_PREEMPTED = 143
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def episode_seed(seed: int, stream: int, index: int) -> int:
    """Env seed of episode ``index`` of a seed stream; streams never share seeds in practice."""
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1)[0])


def select_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but torch sees no CUDA device")
    return name


def tune_cpu() -> None:
    """Process-wide settings that make CPU updates cheaper: flush denormals, keep freed memory.

    Tiny activations and gradients of a trained net can fall into float32's subnormal range,
    where x86 arithmetic takes a slow path (a PyTorch Dreamer port's vector actor-critic lost a
    third of its time to it); flushing them to zero costs nothing and rules that slow path out.

    Every CPU update allocates and frees the same gigabytes of activations; by default glibc
    unmaps each large block on free, and touching it again next update costs a page fault per
    4 KiB (at size S: 600k faults per update; letting glibc keep the blocks takes an update from
    10.8 s to 8.6 s on 2 cores). That part is a no-op off glibc."""
    import torch

    torch.set_flush_denormal(True)
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    libc.mallopt(m_mmap_threshold, 1 << 30)  # blocks below 1 GiB come from the reusable heap
    libc.mallopt(m_trim_threshold, 1 << 34)  # and the heap is not trimmed back


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, device: str, env_fn: Callable, progress: bool):
        import torch

        from wmrobust.agent import Agent
        from wmrobust.agent.replay import Replay

        self.cfg, self.run_dir, self.env_fn = cfg, run_dir, env_fn
        self.hash = config_hash(cfg)
        self.device = device
        self.ckpt_dir = run_dir / rundir.CHECKPOINT
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if device == "cpu":
            tune_cpu()
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)

        probe = env_fn(cfg.env, episode_seed(cfg.seed, TRAIN, 0))
        self.obs_space, self.act_dim = probe.obs_space, probe.act_dim
        probe.close()
        self.key = next(iter(self.obs_space))
        self.agent = Agent(self.obs_space, self.act_dim, cfg.agent, device, cfg.train.precision,
                           compile=cfg.train.compile)
        self.replay = Replay(cfg.train.replay_capacity)

        repeat = cfg.env.action_repeat
        self.total_steps = math.ceil(cfg.train.frames / repeat)
        self.prefill_steps = math.ceil(cfg.train.prefill_frames / repeat)
        # eval_done: episodes of the evaluation at next_eval done (one stopped part-way)
        self.count = {"steps": 0, "updates": 0, "train_episodes": 0, "eval_episodes": 0, "eval_done": 0,
                      "learn_from": -1, "next_log": cfg.train.log_every_frames,
                      "next_eval": cfg.train.eval_every_frames}
        self.rows: list[dict[str, Any]] = []
        self.pending: dict[str, list[float]] = {}  # update metrics since the last log row: name -> [sum, n]
        self.elapsed = 0.0  # wall seconds of earlier sessions of this run
        # CPU seconds of earlier sessions; None once a session did not count them (a checkpoint
        # older than this field), so that a partial count is never shown as the run's.
        self.cpu_before: float | None = 0.0
        self.env = None
        self.episode: list[dict[str, np.ndarray]] = []
        self.act_state = None
        self.last_batch = None
        self.stop_requested = False
        self.progress = progress

    @property
    def frames(self) -> int:
        return self.count["steps"] * self.cfg.env.action_repeat

    def wall_time(self) -> float:
        return self.elapsed + time.monotonic() - self.session_start

    def cpu_time(self) -> float | None:
        """CPU seconds of this run's sessions (every thread of the process, from the start of each
        session's loop), or None when an earlier session's were not counted."""
        return None if self.cpu_before is None else self.cpu_before + time.process_time() - self.session_cpu

    # ---- episodes ---------------------------------------------------------------

    def transition(self, obs, action, reward, done) -> dict[str, np.ndarray]:
        first = action is None
        return {self.key: obs[self.key],
                "action": np.zeros(self.act_dim, np.float32) if first else np.asarray(action, np.float32),
                "reward": np.float32(0.0 if first else reward),
                "is_first": np.bool_(first), "is_terminal": np.bool_(False)}

    def open_episode_env(self) -> None:
        """The env of the current training episode (episode k: seed ``episode_seed(seed, TRAIN, k)``), reset."""
        self.env = self.env_fn(self.cfg.env, episode_seed(self.cfg.seed, TRAIN, self.count["train_episodes"]))
        self.obs = self.env.reset()

    def start_episode(self) -> None:
        self.open_episode_env()
        self.episode = [self.transition(self.obs, None, 0.0, False)]
        self.act_state = self.agent.initial_state(1)

    def finish_episode(self) -> None:
        episode = {k: np.stack([step[k] for step in self.episode]) for k in self.episode[0]}
        self.replay.add(episode)
        self.rows.append({"frames": self.frames, "split": "train", "return": float(episode["reward"].sum()),
                          "episode": self.count["train_episodes"], "wall_time": self.wall_time()})
        self.count["train_episodes"] += 1
        self.env.close()
        self.env = None

    def step(self) -> None:
        if self.env is None:
            self.start_episode()
        if self.count["steps"] < self.prefill_steps:
            action = self.rng.uniform(-1, 1, self.act_dim).astype(np.float32)
        else:
            obs = {self.key: self.obs[self.key][None], "is_first": np.array([len(self.episode) == 1])}
            action, self.act_state = self.agent.act(obs, self.act_state, "explore")
            action = action[0]
        self.obs, reward, done = self.env.step(action)
        self.episode.append(self.transition(self.obs, action, reward, done))
        self.count["steps"] += 1
        if done:
            self.finish_episode()

    # ---- learning, evaluation, logging ------------------------------------------

    def train_updates(self) -> dict[str, float] | None:
        """Run the updates owed (until a stop is requested); returns the metrics of a non-finite
        update, else None."""
        count, t = self.count, self.cfg.train
        if count["learn_from"] < 0:
            if count["steps"] < self.prefill_steps or not self.replay.can_sample(t.batch_length):
                return None
            count["learn_from"] = count["steps"]
        due = int((count["steps"] - count["learn_from"]) * t.train_ratio / (t.batch_size * t.batch_length)) + 1 + t.pretrain
        while count["updates"] < due and not self.stop_requested:
            self.last_batch = self.replay.sample(t.batch_size, t.batch_length, self.rng)
            metrics = self.agent.update(self.last_batch)
            count["updates"] += 1
            for name, value in metrics.items():
                acc = self.pending.setdefault(name, [0.0, 0])
                acc[0] += value
                acc[1] += 1
            if not all(math.isfinite(v) for k, v in metrics.items() if k.startswith("loss_")):
                return metrics
        return None

    def evaluate(self) -> None:
        """The evaluation due: its episodes not done yet, until a stop is requested."""
        t = self.cfg.train
        while self.count["eval_done"] < t.eval_episodes:
            if self.stop_requested:
                return
            env = self.env_fn(self.cfg.env, episode_seed(self.cfg.seed, EVAL, self.count["eval_episodes"]))
            obs, state, total, done, first = env.reset(), self.agent.initial_state(1), 0.0, False, True
            while not done:
                batch = {self.key: obs[self.key][None], "is_first": np.array([first])}
                action, state = self.agent.act(batch, state, "eval")
                obs, reward, done = env.step(action[0])
                total, first = total + reward, False
            env.close()
            self.rows.append({"frames": self.frames, "split": "eval", "return": float(total),
                              "episode": self.count["eval_episodes"], "wall_time": self.wall_time()})
            self.count["eval_episodes"] += 1
            self.count["eval_done"] += 1
        self.count["eval_done"] = 0
        self.count["next_eval"] += t.eval_every_frames

    def log_updates(self) -> None:
        if not self.pending:
            return
        row = {"frames": self.frames, "split": "update", "return": float("nan"), "wall_time": self.wall_time(),
               "updates": self.count["updates"]}
        row.update({name: total / n for name, (total, n) in self.pending.items()})
        if self.last_batch is not None:
            import torch

            # The log cadence is not part of the run's identity, so this diagnostic's random
            # draws (posterior samples, probes) come from a fork of the random streams.
            devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
            with torch.random.fork_rng(devices=devices):
                norms = self.agent.world_model.jacobian_norms(self.last_batch, probes=4, iters=0)
            row["jacobian_norm"] = norms["frobenius"]
        now = time.monotonic()
        n_updates = self.pending.get("loss_model", [0, 0])[1]
        row["updates_per_second"] = n_updates / max(now - self.last_log_time, 1e-9)
        self.last_log_time = now
        self.pending = {}
        self.rows.append(row)

    def write_metrics(self) -> None:
        import pandas as pd

        columns = ["frames", "split", "return"]
        df = pd.DataFrame(self.rows)
        for column in columns + ["jacobian_norm", "wall_time", "updates_per_second"]:
            if column not in df:
                df[column] = np.nan
        losses = sorted(c for c in df.columns if c.startswith("loss_"))
        rest = [c for c in df.columns if c not in columns + losses]
        write_table(df[columns + losses + rest], self.run_dir / rundir.METRICS, config_hash=self.hash)

    def write_status(self, status: str, diverged_at: dict | None = None, **extra: Any) -> None:
        """status.json: running, stopped (a clean SIGTERM/SIGINT: resumable from the checkpoint),
        finished or diverged; ``resumable`` says whether rerunning the command continues it."""
        rundir.write_status(self.run_dir, {
            "status": status, "frames": self.frames, "updates": self.count["updates"],
            "config_hash": self.hash, "device": self.device, "precision": self.cfg.train.precision,
            "diverged_at": diverged_at, "pid": os.getpid(), "resumable": status in ("running", "stopped"),
            "cpu_seconds": None if (cpu := self.cpu_time()) is None else round(cpu, 1),
            **extra, **provenance()})

    # ---- checkpoints -------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        """What resuming needs besides the replay and the random states (wmrobust.checkpoint)."""
        import torch

        in_episode = self.env is not None
        return {
            "config_hash": self.hash, "agent": self.agent.state_dict(),
            "optimizers": self.agent.optimizer_state(), "counters": dict(self.count),
            "episode": ({k: torch.from_numpy(np.stack([s[k] for s in self.episode])) for k in self.episode[0]}
                        if in_episode else None),
            "act_state": self.act_state if in_episode else None,
            "last_batch": ({k: torch.from_numpy(v) for k, v in self.last_batch.items()}
                           if self.last_batch is not None else None),
            "rows": self.rows, "pending": self.pending, "elapsed": self.wall_time(), "cpu_seconds": self.cpu_time(),
        }

    def save_checkpoint(self) -> None:
        save_checkpoint(self.ckpt_dir, self.checkpoint_state(), self.replay, self.rng)
        atomic_write_json(self.ckpt_dir / rundir.PROGRESS, {"frames": self.frames, "updates": self.count["updates"]})
        self.last_checkpoint = time.monotonic()

    def restore(self) -> None:
        """Continue from the checkpoint: its state, and the episode in progress replayed."""
        state = load_checkpoint(self.ckpt_dir, self.hash, self.device, self.replay, self.rng)
        self.agent.load_state_dict(state["agent"])
        self.agent.load_optimizer_state(state["optimizers"])
        self.count = {**self.count, **state["counters"]}  # counters added since default to new
        self.rows, self.pending, self.elapsed = state["rows"], state["pending"], state["elapsed"]
        self.cpu_before = state.get("cpu_seconds")
        if state["episode"] is not None:
            self.resume_episode({k: v.cpu().numpy() for k, v in state["episode"].items()})
            self.act_state = state["act_state"]
        if state["last_batch"] is not None:
            self.last_batch = {k: v.cpu().numpy() for k, v in state["last_batch"].items()}

    def resume_episode(self, episode: dict[str, np.ndarray]) -> None:
        """Recreate the episode's env and replay its recorded actions up to where it stopped."""
        self.open_episode_env()
        for action in episode["action"][1:]:
            self.obs, _, _ = self.env.step(action)
        if not np.array_equal(self.obs[self.key], episode[self.key][-1]):
            raise CheckpointError(f"{self.ckpt_dir / STATE}: replaying the episode in progress did not reproduce "
                                  f"its observations; the environment is not deterministic given its seed")
        self.episode = [{k: v[i] for k, v in episode.items()} for i in range(len(episode["reward"]))]

    # ---- the loop ----------------------------------------------------------------

    def progress_info(self) -> dict[str, str]:
        """What a person watching the run wants to know: frames, updates and their rate, the mean
        return of the last evaluation's episodes, time so far and left (at this session's pace)."""
        t, session = self.cfg.train, max(time.monotonic() - self.session_start, 1e-9)
        done = self.frames - self.session_frames
        left = (t.frames - self.frames) * session / done if done > 0 else None
        evals = [row for row in self.rows if row["split"] == "eval"]
        last = [row["return"] for row in evals if row["frames"] == evals[-1]["frames"]] if evals else []
        return {"frames": f"frames {self.frames:,}/{t.frames:,} ({self.frames / t.frames:.0%})",
                "updates": f"{self.count['updates']:,} updates "
                           f"({(self.count['updates'] - self.session_updates) / session:.2f}/s)",
                "eval": f"last eval return {sum(last) / len(last):.0f}" if last else "no eval yet",
                "time": f"{duration(self.wall_time())}" + (f", ~{duration(left)} left" if left else "")}

    def run(self, stop_after_frames: int | None = None) -> str:
        self.session_start = self.last_log_time = self.last_checkpoint = time.monotonic()
        self.session_cpu = time.process_time()
        lines = LogLines()
        if (self.ckpt_dir / STATE).exists():
            self.restore()
            print(f"resuming from checkpoint at frames {self.frames}", flush=True)
        self.session_frames, self.session_updates = self.frames, self.count["updates"]
        self.write_status("running")
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.cfg.train.frames, initial=self.frames, unit="frame", file=sys.stderr)
        t = self.cfg.train
        try:
            # Each pass does the work owed at the current agent step (updates, evaluation, log
            # row), then takes the next step. A stop request ends the updates and the evaluation
            # between two of theirs; the checkpoint then records what is left, and the resumed
            # run's first pass does it, in the order an uninterrupted run would have.
            while True:
                bad = self.train_updates()
                if bad is not None:
                    return self.diverge(bad)
                if t.eval_every_frames and self.frames >= self.count["next_eval"]:
                    self.evaluate()
                if self.frames >= self.count["next_log"] and not self.stop_requested:
                    self.log_updates()
                    self.count["next_log"] += t.log_every_frames
                    self.write_metrics()
                    self.write_status("running")
                    if bar is not None:
                        info = self.progress_info()
                        bar.set_postfix_str(f"{info['updates']} · {info['eval']}", refresh=False)
                if bar is not None:
                    bar.update(self.frames - bar.n)
                elif lines.due():
                    lines.print(" · ".join(self.progress_info().values()))
                if stop_after_frames is not None and self.frames >= stop_after_frames:
                    self.stop_requested = True
                if self.stop_requested:
                    self.save_checkpoint()
                    self.write_metrics()
                    self.write_status("stopped")
                    print(f"stop requested: checkpoint saved at frames {self.frames}, "
                          f"exiting {EXIT_PREEMPTED}", flush=True)
                    raise SystemExit(EXIT_PREEMPTED)
                if self.count["steps"] >= self.total_steps:
                    break
                if t.checkpoint_every_seconds and time.monotonic() - self.last_checkpoint >= t.checkpoint_every_seconds:
                    self.save_checkpoint()
                self.step()
        finally:
            if bar is not None:
                bar.close()
        self.log_updates()
        print("finished: " + " · ".join(self.progress_info().values()), flush=True)
        return self.finish("finished")

    def diverge(self, metrics: dict[str, float]) -> str:
        name, value = next((k, v) for k, v in metrics.items() if k.startswith("loss_") and not math.isfinite(v))
        self.log_updates()
        return self.finish("diverged", {"frames": self.frames, "loss_name": name, "value": value})

    def finish(self, status: str, diverged_at: dict | None = None) -> str:
        if self.env is not None:
            self.env.close()
        self.agent.save(self.run_dir / rundir.MODEL)
        self.write_metrics()
        # Every later use of model.pt checks it against this digest (rundir.model_problem).
        self.write_status(status, diverged_at, model_sha256=file_digest(self.run_dir / rundir.MODEL))
        shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        return status


def train(cfg: RunConfig, run_dir: Path, progress: bool | None = None, *,
          _env_fn: Callable | None = None, _stop_after_frames: int | None = None) -> str:
    """Train (or resume, or find finished) the run in ``run_dir``; returns its final status.

    ``_env_fn(env_cfg, seed)`` and ``_stop_after_frames`` are test hooks: a fake env, and
    behaving as if SIGTERM arrived once that many frames are collected."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: not a directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    with rundir.lock(run_dir):
        return _train(cfg, run_dir, progress, _env_fn, _stop_after_frames)


def _train(cfg: RunConfig, run_dir: Path, progress: bool | None, _env_fn: Callable | None,
           _stop_after_frames: int | None) -> str:
    done = rundir.prepare(cfg, run_dir)
    if done is not None:
        return done
    if _env_fn is None:
        from wmrobust.envs import make_env

        _env_fn = make_env
    progress = sys.stderr.isatty() if progress is None else progress
    trainer = Trainer(cfg, run_dir, select_device(cfg.train.device), _env_fn, progress)

    def request_stop(signum, frame):
        trainer.stop_requested = True

    handlers = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, request_stop)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        return trainer.run(_stop_after_frames)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


class TrainJobFailed(RuntimeError):
    """The workflow's train job did not finish its run. A plain exception on purpose: raised
    in a `run:` block, Snakemake counts it as the job failing, where SystemExit (a
    BaseException) escapes its job thread unreported and leaves the job's Snakemake process
    waiting for the job forever."""


def train_job(cfg: RunConfig, run_dir: Path, log: Path) -> None:
    """The workflow's train job: `wmrobust train` of ``cfg`` in a process of its own, output
    appended to ``log``. Its own process owns its main thread, so it takes SIGTERM/SIGINT as
    `wmrobust train` does (checkpoint, exit 143); a non-zero exit fails the job
    (TrainJobFailed), and a stopped run says where its checkpoint is and how to resume."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, open(log, "a") as out:
        path = Path(tmp) / "config.yaml"
        save_yaml(cfg, path)
        code = subprocess.call([sys.executable, "-m", "wmrobust.cli", "train", "--run-dir", str(run_dir),
                                "--config", str(path)], stdout=out, stderr=subprocess.STDOUT)
    if code == EXIT_PREEMPTED:
        try:
            status = rundir.read_status(run_dir) or {}
        except rundir.RunError:
            status = {}
        raise TrainJobFailed(f"{run_dir}: wmrobust train exited {code}: stopped at frames {status.get('frames')} "
                             f"with a checkpoint; the same snakemake command resumes it (log: {log})")
    if code:
        raise TrainJobFailed(f"{run_dir}: wmrobust train exited {code} (log: {log})")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``a.b=1`` pairs -> nested dict; values parsed as YAML (numbers, lists, true/false)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. agent.jacobian.weight=0.01")
        node = {}
        leaf = node
        parts = key.split(".")
        for part in parts[:-1]:
            leaf = leaf.setdefault(part, {})
        value = yaml.safe_load(text)
        if isinstance(value, str) and NUMBER.fullmatch(text.strip()):
            value = float(value)  # YAML 1.1 reads 1e30 (no dot) as a string
        leaf[parts[-1]] = value
        out = merge(out, node)
    return out


def cli(command: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"wmrobust {command}",
        description="Train one run (resumable). Every value not set here keeps its default, and the defaults "
                    "are the paper's setting: DreamerV2's DMC recipe from pixels, 500k frames, stock rendering "
                    "(config/README.md lists every key). A run directory holding a finished run of the same "
                    "config is left as it is.")
    parser.add_argument("--run-dir", required=True, type=Path, help="run directory (created if missing)")
    parser.add_argument("--config", type=Path, help="YAML file of config overrides")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. agent.jacobian.weight=0.01 (repeatable)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="shorthand for --set train.device=...")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.config is not None:
        overrides = read_yaml(args.config) or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{args.config}: expected a mapping of overrides")
    device = {"train": {"device": args.device}} if args.device else {}
    cfg = resolve(merge(merge(overrides, parse_sets(args.sets)), device))
    status = train(cfg, args.run_dir)
    print(f"{args.run_dir}: {status}", file=sys.stderr)
    return 0
