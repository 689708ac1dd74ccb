"""Stopping training: a stop request is honoured within one update or evaluation episode and
the run resumes bit for bit; Ctrl-C or SIGTERM to a local snakemake ends every process within
seconds, starts no new job (with --keep-going too), and the same command resumes the run.
Snakemake runs in a scratch copy of the workflow, as in test_workflow."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
from test_train import FakeEnv, compared, tiny
from test_workflow import workflow_copy

from wmrobust import rundir
from wmrobust.config import merge, resolve
from wmrobust.train import EVAL, EXIT_PREEMPTED, episode_seed, train

# ---- the trainer: a stop is honoured in every phase ---------------------------------

# Pretrain updates after the prefill, and evaluations of three episodes.
PHASES = {"train": {"pretrain": 8, "eval_episodes": 3}}


def phases_config():
    return resolve(merge(tiny().to_dict(), PHASES))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    assert train(phases_config(), run_dir, progress=False, _env_fn=FakeEnv) == "finished"
    return run_dir


def stop_during(phase: str, monkeypatch):
    """An env factory (and agent patch) sending SIGTERM once, in the middle of ``phase``."""
    from wmrobust.agent import Agent

    sent = []

    def stop_once():
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    if phase == "pretrain":  # after the 3rd of the 9 updates due at the end of the prefill
        update, calls = Agent.update, []

        def counted(self, batch):
            calls.append(1)
            if len(calls) == 3:
                stop_once()
            return update(self, batch)

        monkeypatch.setattr(Agent, "update", counted)
        return FakeEnv

    class StoppingEnv(FakeEnv):  # during the first episode of the first evaluation
        def step(self, action):
            if self.seed == episode_seed(0, EVAL, 0) and self.frame == 10:
                stop_once()
            return super().step(action)

    def make(cfg, seed):
        env = StoppingEnv(cfg, seed)
        env.seed = seed
        return env

    return make


@pytest.mark.parametrize(("phase", "frames", "updates", "eval_rows"), [
    ("pretrain", 40, 3, 0),  # not the 9 updates due
    ("evaluation", 100, None, 1),  # not the 3 episodes due
])
def test_a_stop_is_honoured_within_one_update_or_evaluation_episode_and_resumes_exactly(
        tmp_path, monkeypatch, uninterrupted, phase, frames, updates, eval_rows):
    cfg = phases_config()
    with monkeypatch.context() as patch:
        with pytest.raises(SystemExit) as exit_info:
            train(cfg, tmp_path, progress=False, _env_fn=stop_during(phase, patch))
    assert exit_info.value.code == EXIT_PREEMPTED
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "stopped" and status["frames"] == frames
    if updates is not None:
        assert status["updates"] == updates
    rows = pd.read_parquet(tmp_path / "metrics.parquet")
    assert len(rows.query("split == 'eval'")) == eval_rows
    # Snakemake deletes a failed job's outputs: the checkpoint still says how far the run is.
    for name in ("status.json", "metrics.parquet", "metrics.parquet.provenance.json"):
        (tmp_path / name).unlink()
    assert rundir.state(tmp_path) == {"state": "resumable", "frames": frames, "id": "-"}

    assert train(cfg, tmp_path, progress=False, _env_fn=FakeEnv) == "finished"
    pd.testing.assert_frame_equal(compared(uninterrupted), compared(tmp_path))
    a = torch.load(uninterrupted / "model.pt", weights_only=True)["agent"]
    b = torch.load(tmp_path / "model.pt", weights_only=True)["agent"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- the workflow: Ctrl-C and SIGTERM to snakemake ---------------------------------

# One smoke run long enough to be stopped mid-training (and a second one queued behind it).
GRID = ("--config", "scale=smoke", "tasks=[walker_walk]", "variants=[baseline]",
        'scales={"smoke": {"run": {"train": {"frames": 20000}}}}')
STOP_SECONDS = 30  # every process gone this long after the signal


def start(work: Path, *args: str) -> subprocess.Popen:
    """snakemake in a session of its own (as a terminal runs a command: Ctrl-C reaches all of it)."""
    with open(work / "snakemake.out", "a") as out:
        return subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", "runs", *GRID, *args],
                                cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def session(proc: subprocess.Popen) -> list[psutil.Process]:
    """The live processes of the session ``proc`` leads."""
    found = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == proc.pid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (OSError, psutil.Error):
            pass
    return found


def run_dirs(work: Path) -> dict[int, Path]:
    """Seed -> run directory, of the runs started."""
    runs = work / "results/smoke/runs/walker_walk/baseline"
    return {int(p.name[4:].partition("-")[0]): p for p in runs.glob("seed*")}


def train_log(work: Path, seed: int) -> str:
    logs = list((work / "results/smoke/logs/train/walker_walk/baseline").glob(f"seed{seed}-*.log"))
    return logs[0].read_text() if logs else ""


def wait_for(what: str, check, proc: subprocess.Popen, work: Path, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no {what}:\n{(work / 'snakemake.out').read_text()[-3000:]}")


def training_past_prefill(work: Path):
    """Seed 0 has done the smoke prefill (400 frames) and its pretrain updates: it is training."""
    status = run_dirs(work).get(0, Path("-")) / "status.json"
    try:
        return json.loads(status.read_text())["frames"] >= 400
    except (OSError, ValueError, KeyError):
        return False


def stop_and_wait(proc: subprocess.Popen, work: Path, send) -> float:
    """Send the signal; seconds until every process of the session has ended."""
    sent = time.monotonic()
    send()
    while session(proc) and time.monotonic() - sent < STOP_SECONDS:
        time.sleep(0.2)
    left = [" ".join(p.cmdline()[:6]) for p in session(proc)]
    assert not left, f"still running {STOP_SECONDS} s after the signal: {left}\n" \
                     f"{(work / 'snakemake.out').read_text()[-3000:]}"
    proc.wait()
    return time.monotonic() - sent


def stopped_at(work: Path, seed: int = 0) -> int:
    """The frames the run's last stop saved its checkpoint at (its log says)."""
    found = re.findall(r"stop requested: checkpoint saved at frames (\d+)", train_log(work, seed))
    assert found, train_log(work, seed)[-2000:]
    assert (run_dirs(work)[seed] / "checkpoint" / "state.pt").exists()
    return int(found[-1])


@pytest.fixture
def snakemake_session():
    """Start snakemake sessions; any still running after the test is killed."""
    started = []

    def launch(work: Path, *args: str) -> subprocess.Popen:
        started.append(start(work, *args))
        return started[-1]

    yield launch
    for proc in started:
        if proc.poll() is None or session(proc):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ctrl_c_stops_every_process_and_the_same_command_resumes(tmp_path, snakemake_session):
    work = workflow_copy(tmp_path / "work")
    proc = snakemake_session(work, "seeds=[0]")
    wait_for("training past the prefill", lambda: training_past_prefill(work), proc, work)
    stop_and_wait(proc, work, lambda: os.killpg(proc.pid, signal.SIGINT))
    frames = stopped_at(work)
    assert rundir.state(run_dirs(work)[0])["frames"] == frames  # resumes before new runs of its seed

    again = snakemake_session(work, "seeds=[0]")  # no --rerun-incomplete
    resumed = f"resuming from checkpoint at frames {frames}"
    wait_for(resumed, lambda: resumed in train_log(work, 0), again, work)
    stop_and_wait(again, work, lambda: os.killpg(again.pid, signal.SIGINT))
    assert stopped_at(work) >= frames


def test_sigterm_to_snakemake_stops_every_process_and_starts_no_new_job(tmp_path, snakemake_session):
    work = workflow_copy(tmp_path / "work")
    proc = snakemake_session(work, "seeds=[0,1]", "--keep-going")  # seed 1 waits for the core
    wait_for("training past the prefill", lambda: training_past_prefill(work), proc, work)
    stop_and_wait(proc, work, lambda: os.kill(proc.pid, signal.SIGTERM))
    stopped_at(work)
    assert 1 not in run_dirs(work) and not train_log(work, 1), "a new job started after SIGTERM"
    assert "Stopping:" in (work / "snakemake.out").read_text()
