"""Stopping training: a stop request is honoured within one update or evaluation episode and
the run resumes bit for bit."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_train import FakeEnv, compared, tiny

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

    assert train(cfg, tmp_path, progress=False, _env_fn=FakeEnv) == "finished"
    pd.testing.assert_frame_equal(compared(uninterrupted), compared(tmp_path))
    a = torch.load(uninterrupted / "model.pt", weights_only=True)["agent"]
    b = torch.load(tmp_path / "model.pt", weights_only=True)["agent"]
    assert all(torch.equal(a[k], b[k]) for k in a)
