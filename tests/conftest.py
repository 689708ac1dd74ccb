"""Shared fixtures: one tiny trained run per test session, and held-out episodes from it."""

import functools
import json
import shutil
from pathlib import Path

import pytest

from wmrobust.config import resolve, save_yaml
from wmrobust.io import file_digest

# A vector-observation task on which a tiny world model learns visibly in ~400 updates.
TINY_RUN = {
    "env": {"task": "cartpole_swingup", "obs": "vector", "episode_frames": 200},
    "agent": {"size": "tiny"},
    "train": {"frames": 1200, "prefill_frames": 400, "train_ratio": 64, "eval_every_frames": 0,
              "log_every_frames": 400, "device": "cpu", "threads": 1},
}
HELDOUT_SEEDS = [1_000_000, 1_000_001, 1_000_002]
HELDOUT_FRAMES = 120  # 60 agent steps + the first observation: 61 >= context 5 + horizon 50


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id) -> Path:
    """A finished run: tiny agent, cartpole_swingup from vectors, 1200 frames (~400 updates).
    Trained once per test session, also when pytest-xdist's workers share it: the first to
    take the lock trains, the others find the run finished (train leaves it as it is)."""
    from filelock import FileLock

    from wmrobust.train import train

    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # the workers' common folder
    run_dir = shared / "tiny_run" / "cartpole_swingup" / "baseline" / "seed0"
    with FileLock(shared / "tiny_run.lock"):
        assert train(resolve(TINY_RUN), run_dir, progress=False) == "finished"
    return run_dir


@pytest.fixture(scope="session")
def heldout(tiny_run, tmp_path_factory) -> Path:
    """Held-out episodes of the tiny run's policy (3 episodes of 61 steps)."""
    from wmrobust.evaluate import collect

    path = tmp_path_factory.mktemp("heldout") / "seed0.npz"
    collect(tiny_run, path, episode_seeds=HELDOUT_SEEDS, episode_frames=HELDOUT_FRAMES)
    return path


@pytest.fixture(scope="session")
def pixel_run(tmp_path_factory) -> Path:
    """An untrained tiny pixel agent saved as a finished run (walker_walk, fast rendering):
    for the pixel paths of evaluate and collect, where what is learned does not matter."""
    from wmrobust.agent import Agent
    from wmrobust.envs import make_env

    run_dir = tmp_path_factory.mktemp("runs") / "walker_walk" / "baseline" / "seed0"
    run_dir.mkdir(parents=True)
    # A run config must be one that could train: replay sequences within a 20-frame episode.
    cfg = resolve({"env": {"render": "fast", "episode_frames": 20}, "agent": {"size": "tiny"},
                   "train": {"batch_length": 10}})
    save_yaml(cfg, run_dir / "config.yaml")
    env = make_env(cfg.env, 0)
    Agent(env.obs_space, env.act_dim, cfg.agent).save(run_dir / "model.pt")
    env.close()
    (run_dir / "status.json").write_text(json.dumps({"status": "finished", "config_hash": cfg.hash(),
                                                     "model_sha256": file_digest(run_dir / "model.pt")}))
    return run_dir


@pytest.fixture
def copy_run(tmp_path):
    """copy_run(run_dir, status=None, model=True): a copy of a run directory in tmp_path,
    optionally with another status or without its model."""
    return functools.partial(_copy_run, dest=tmp_path / "copy")


def _copy_run(run_dir: Path, dest: Path, status: str | None = None, model: bool = True) -> Path:
    dest.mkdir(parents=True)
    for name in ("config.yaml", "status.json") + (("model.pt",) if model else ()):
        shutil.copy(run_dir / name, dest / name)
    if status is not None:
        data = json.loads((dest / "status.json").read_text())
        data["status"] = status
        (dest / "status.json").write_text(json.dumps(data))
    return dest
