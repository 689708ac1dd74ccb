"""Training loop: run directory files, exact resume, divergence, refusals (fake env, tiny agent)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from wmrobust.checkpoint import CheckpointError
from wmrobust.cli import main
from wmrobust.config import ConfigError, resolve
from wmrobust.rundir import RunError
from wmrobust.train import EXIT_PREEMPTED, parse_sets, train


class FakeEnv:
    """A deterministic point mass standing in for dm_control: same seed, same episode."""

    def __init__(self, cfg, seed: int):
        self.cfg, self.act_dim = cfg, 2
        self.rng = np.random.default_rng(seed)
        size = cfg.image_size
        self.obs_space = ({"vector": ((4,), np.float32)} if cfg.obs == "vector"
                          else {"image": ((size, size, 3), np.uint8)})

    def _obs(self):
        if self.cfg.obs == "vector":
            return {"vector": np.concatenate([self.x, np.sin(self.x)]).astype(np.float32)}
        image = np.zeros((self.cfg.image_size,) * 2 + (3,), np.uint8)
        image[..., 0] = np.uint8(128 + 40 * np.tanh(self.x[0]))
        return {"image": image}

    def reset(self):
        self.frame, self.x = 0, self.rng.normal(size=2)
        return self._obs()

    def step(self, action):
        for _ in range(self.cfg.action_repeat):
            self.x = 0.9 * self.x + 0.2 * np.asarray(action) + 0.05 * self.rng.normal(size=2)
        self.frame += self.cfg.action_repeat
        return self._obs(), float(-np.abs(self.x).sum()), self.frame >= self.cfg.episode_frames

    def close(self):
        pass


def tiny(obs="vector", **agent):
    return resolve({
        "env": {"task": "cartpole_swingup", "obs": obs, "episode_frames": 40},  # FakeEnv ignores the task
        "agent": {"size": "tiny", **agent},
        # 10 updates at the end of the prefill instead of the recipes' 100: the phase is
        # exercised, and the tests that train this config many times stay short.
        "train": {"frames": 200, "prefill_frames": 40, "train_ratio": 32, "pretrain": 10, "eval_every_frames": 100,
                  "log_every_frames": 20, "checkpoint_every_seconds": 0, "device": "cpu"},
    })


def compared(run_dir):
    df = pd.read_parquet(run_dir / "metrics.parquet")
    return df.drop(columns=["wall_time", "updates_per_second"])


@pytest.mark.parametrize("field, value", [("log_every_frames", 60), ("checkpoint_every_seconds", 1e-6)])
def test_fields_left_out_of_the_run_id_change_nothing_it_computes(tmp_path, field, value):
    """Each field of NOT_IDENTITY, varied: same weights, same evaluation returns, bit for bit."""
    from wmrobust.config import NOT_IDENTITY, merge

    assert set(NOT_IDENTITY) == {"train.log_every_frames", "train.checkpoint_every_seconds"}  # all varied here
    other = resolve(merge(tiny().to_dict(), {"train": {field: value}}))
    assert other.hash() == tiny().hash()
    train(tiny(), tmp_path / "a", progress=False, _env_fn=FakeEnv)
    train(other, tmp_path / "b", progress=False, _env_fn=FakeEnv)
    a, b = (torch.load(tmp_path / run / "model.pt", weights_only=True)["agent"] for run in "ab")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    evals = [pd.read_parquet(tmp_path / run / "metrics.parquet").query("split == 'eval'")["return"] for run in "ab"]
    assert evals[0].tolist() == evals[1].tolist()


def test_run_dir_files_and_finished_is_idempotent(tmp_path):
    assert train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv) == "finished"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "config.yaml", "metrics.parquet", "metrics.parquet.provenance.json", "model.pt", "status.json"]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "finished" and status["frames"] == 200 and status["diverged_at"] is None
    assert status["device"] == "cpu" and status["precision"] == "float32"
    assert status["cpu_seconds"] > 0
    df = pd.read_parquet(tmp_path / "metrics.parquet")
    assert list(df.columns[:3]) == ["frames", "split", "return"]
    assert set(df.split) == {"train", "eval", "update"}
    assert {"loss_model", "loss_actor", "loss_critic", "jacobian_norm", "wall_time", "updates_per_second"} <= set(df.columns)
    updates = df[df.split == "update"]
    assert np.isfinite(updates.loss_model).all() and updates["return"].isna().all()
    assert len(df[df.split == "eval"]) == 2  # at 100 and 200 frames
    torch.load(tmp_path / "model.pt", weights_only=True)
    assert train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv) == "finished"  # nothing left to do


@pytest.mark.parametrize("obs", ["vector", pytest.param("pixels", marks=pytest.mark.slow)])
def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, obs):
    cfg = tiny(obs, latent_error={"kind": "zero_drift", "sigma2": 0.5}, jacobian={"weight": 0.01})
    assert train(cfg, tmp_path / "a", progress=False, _env_fn=FakeEnv) == "finished"
    # Stop mid-episode (frame 130 of a 40-frame episode), then resume, twice.
    for stop in (70, 130):
        with pytest.raises(SystemExit) as exit_info:
            train(cfg, tmp_path / "b", progress=False, _env_fn=FakeEnv, _stop_after_frames=stop)
        assert exit_info.value.code == EXIT_PREEMPTED
        assert (tmp_path / "b" / "checkpoint" / "state.pt").exists()
        torch.load(tmp_path / "b" / "checkpoint" / "state.pt", weights_only=True)
        assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "stopped"
    assert train(cfg, tmp_path / "b", progress=False, _env_fn=FakeEnv) == "finished"
    assert not (tmp_path / "b" / "checkpoint").exists()
    pd.testing.assert_frame_equal(compared(tmp_path / "a"), compared(tmp_path / "b"))
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["agent"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["agent"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cpu_time_is_summed_over_sessions_and_never_partial(tmp_path):
    """status.json's cpu_seconds adds up a resumed run's sessions; resumed from a checkpoint
    that did not count them (older code) it stays unknown rather than showing a part."""
    with pytest.raises(SystemExit):
        train(tiny(), tmp_path / "a", progress=False, _env_fn=FakeEnv, _stop_after_frames=100)
    first = json.loads((tmp_path / "a" / "status.json").read_text())["cpu_seconds"]
    assert train(tiny(), tmp_path / "a", progress=False, _env_fn=FakeEnv) == "finished"
    assert json.loads((tmp_path / "a" / "status.json").read_text())["cpu_seconds"] > first > 0

    with pytest.raises(SystemExit):
        train(tiny(), tmp_path / "b", progress=False, _env_fn=FakeEnv, _stop_after_frames=100)
    state_file = tmp_path / "b" / "checkpoint" / "state.pt"
    state = torch.load(state_file, weights_only=True)
    del state["cpu_seconds"]
    torch.save(state, state_file)
    assert train(tiny(), tmp_path / "b", progress=False, _env_fn=FakeEnv) == "finished"
    assert json.loads((tmp_path / "b" / "status.json").read_text())["cpu_seconds"] is None


def test_non_finite_loss_stops_run_as_diverged(tmp_path, monkeypatch):
    # A huge learning rate sends the weights to ~1e30 after one step, the loss to inf after.
    cfg = tiny(model_lr=1e30)
    assert train(cfg, tmp_path, progress=False, _env_fn=FakeEnv) == "diverged"
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "diverged"
    assert status["diverged_at"]["frames"] < 200
    assert status["diverged_at"]["loss_name"].startswith("loss_")
    assert not np.isfinite(status["diverged_at"]["value"])
    assert (tmp_path / "model.pt").exists() and (tmp_path / "metrics.parquet").exists()
    assert not (tmp_path / "checkpoint").exists()


def test_cli_diverged_exits_zero(tmp_path, monkeypatch, capsys):
    import wmrobust.train as train_module

    monkeypatch.setattr(train_module, "train", lambda cfg, run_dir: train(
        cfg, run_dir, progress=False, _env_fn=FakeEnv))
    argv = ["--run-dir", str(tmp_path), "--set", "env.task=cartpole_swingup", "--set", "env.obs=vector",
            "--set", "env.episode_frames=40", "--set", "agent.size=tiny", "--set", "agent.model_lr=1e30",
            "--set", "train.frames=200", "--set", "train.prefill_frames=40", "--set", "train.train_ratio=32",
            "--device", "cpu"]
    assert main(["train", *argv]) == 0
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("setting, key", [
    ("agent.jacobian.estimator=foo", "agent.jacobian.estimator"),
    ("train.frames=-1", "train.frames"),
    ("agent.latent_error.kind=drift", "agent.latent_error.kind"),
    ("agent.sizee=tiny", "agent.sizee"),
    ("agent.size=XL", "agent.size"),
])
def test_bad_config_refused_naming_key(tmp_path, capsys, setting, key):
    assert main(["train", "--run-dir", str(tmp_path), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert key in err and "Traceback" not in err
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve(parse_sets([setting]))


def test_different_config_in_run_dir_refused(tmp_path):
    with pytest.raises(SystemExit):
        train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv, _stop_after_frames=60)
    with pytest.raises(ConfigError, match="agent.jacobian.weight"):
        train(tiny(jacobian={"weight": 0.1}), tmp_path, progress=False, _env_fn=FakeEnv)


def test_checkpoint_of_other_config_or_corrupt_refused(tmp_path):
    cfg = tiny()
    with pytest.raises(SystemExit):
        train(cfg, tmp_path, progress=False, _env_fn=FakeEnv, _stop_after_frames=60)
    state_path = tmp_path / "checkpoint" / "state.pt"
    state = torch.load(state_path, weights_only=True)
    state["config_hash"] = "0123456789ab"
    torch.save(state, state_path)
    with pytest.raises(CheckpointError, match="state.pt.*0123456789ab"):
        train(cfg, tmp_path, progress=False, _env_fn=FakeEnv)
    state_path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="state.pt: corrupt"):
        train(cfg, tmp_path, progress=False, _env_fn=FakeEnv)


def test_sigterm_saves_checkpoint_and_exits_143(tmp_path):
    """A real SIGTERM (sent by the env at a fixed step) checkpoints and exits non-zero."""
    import os
    import signal

    class SignallingEnv(FakeEnv):
        def step(self, action):
            out = super().step(action)
            if self.frame == 20 and not (tmp_path / "sent").exists():
                (tmp_path / "sent").touch()
                os.kill(os.getpid(), signal.SIGTERM)
            return out

    with pytest.raises(SystemExit) as exit_info:
        train(tiny(), tmp_path / "run", progress=False, _env_fn=SignallingEnv)
    assert exit_info.value.code == 143
    assert (tmp_path / "run" / "checkpoint" / "state.pt").exists()
    assert train(tiny(), tmp_path / "run", progress=False, _env_fn=SignallingEnv) == "finished"


def test_changes_outside_the_identity_keep_the_finished_run(tmp_path):
    cfg = tiny()
    assert train(cfg, tmp_path, progress=False, _env_fn=FakeEnv) == "finished"
    model = (tmp_path / "model.pt").read_bytes()
    faster = resolve({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "checkpoint_every_seconds": 5.0,
                                                         "log_every_frames": 40}})
    assert faster.hash() == cfg.hash()
    assert train(faster, tmp_path, progress=False, _env_fn=FakeEnv) == "finished"
    assert (tmp_path / "model.pt").read_bytes() == model


def test_finished_run_is_checked_before_it_counts_as_finished(tmp_path):
    cfg = tiny()
    assert train(cfg, tmp_path, progress=False, _env_fn=FakeEnv) == "finished"
    # config.yaml edited to another seed, and train asked for that seed: status.json is seed 0's.
    other = resolve({**cfg.to_dict(), "seed": 1})
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace("seed: 0", "seed: 1"))
    with pytest.raises(ConfigError, match="status.json: records run id"):
        train(other, tmp_path, progress=False, _env_fn=FakeEnv)
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace("seed: 1", "seed: 0"))
    model = tmp_path / "model.pt"
    model.write_bytes(model.read_bytes()[:100])  # truncated
    with pytest.raises(RunError, match="model.pt: not the model this run saved"):
        train(cfg, tmp_path, progress=False, _env_fn=FakeEnv)
    assert (tmp_path / "metrics.parquet").exists()  # nothing was deleted


def test_a_run_directory_in_training_is_refused_to_a_second_trainer(tmp_path):
    from wmrobust import rundir

    with rundir.lock(tmp_path):  # as another process training it would hold it
        with pytest.raises(ConfigError, match=rf"{tmp_path}: already being trained by process \d+"):
            train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv)
    assert not (tmp_path / "status.json").exists()
    assert train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv) == "finished"  # free again


def test_run_dir_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert main(["train", "--run-dir", str(path), "--set", "agent.size=tiny"]) == 2
    err = capsys.readouterr().err
    assert f"--run-dir {path}: not a directory" in err and "Traceback" not in err


def test_progress_lines_in_a_log_without_terminal(tmp_path, capsys, monkeypatch):
    import wmrobust.progress

    monkeypatch.setattr(wmrobust.progress, "EVERY_SECONDS", 0.0)
    train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv)
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("frames ") and "updates (" in line and " left" in line for line in lines)
    assert lines[-1].startswith("finished: frames 200/200 (100%)") and "last eval return" in lines[-1]
