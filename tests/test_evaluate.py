"""wmrobust evaluate / collect: rows, determinism, diverged runs, errors, held-out layout."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from wmrobust.cli import main
from wmrobust.evaluate import collect, evaluate, protocol_conditions
from wmrobust.perturb import parse_condition
from wmrobust.io import file_digest, provenance_path

SEEDS = [1_000_000, 1_000_001]
CONDITIONS = ["clean", "noise=0.1", "mass=1.5", "latent=1", "clean"]  # clean twice: evaluated once
IDENTITY = ["task", "variant", "seed", "preset", "latent_error", "sigma2", "lambda"]
COLUMNS = IDENTITY + ["condition", "family", "level", "episode", "episode_seed", "return", "status"]


def _evaluate(run_dir, out, **kwargs):
    kwargs = {"variant": "baseline", "conditions": [parse_condition(c) for c in CONDITIONS], "episode_seeds": SEEDS,
              "episode_frames": 40, **kwargs}
    return evaluate(run_dir, out, **kwargs)


def test_progress_lines_in_a_log_without_terminal(tiny_run, tmp_path, capsys, monkeypatch):
    import wmrobust.progress

    monkeypatch.setattr(wmrobust.progress, "EVERY_SECONDS", 0.0)
    _evaluate(tiny_run, tmp_path / "eval.parquet", progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("episodes 0/8 done, 8 under way") and " left" in line for line in lines)
    assert lines[-1].startswith("8 episodes of 20 steps (cartpole_swingup) in ")


def test_rows_and_columns(tiny_run, tmp_path, capsys):
    out = tmp_path / "eval.parquet"
    args = ["--run-dir", str(tiny_run), "--out", str(out), "--variant", "baseline", "--conditions", *CONDITIONS,
            "--episode-seeds", *map(str, SEEDS), "--episode-frames", "40"]
    assert main(["evaluate", *args]) == 0
    df = pd.read_parquet(out)
    assert list(df.columns) == COLUMNS
    assert len(df) == 4 * len(SEEDS)
    assert list(df["condition"].unique()) == ["clean", "noise=0.1", "mass=1.5", "latent=1"]
    assert list(df["family"].unique()) == ["clean", "noise", "mass", "latent"]
    assert df.groupby("condition")["level"].first().to_dict() == {"clean": 0.0, "noise=0.1": 0.1,
                                                                   "mass=1.5": 1.5, "latent=1": 1.0}
    assert df["episode"].tolist() == [0, 1] * 4 and df["episode_seed"].tolist() == SEEDS * 4
    row = df.iloc[0]
    assert (row["task"], row["variant"], row["seed"], row["preset"]) == ("cartpole_swingup", "baseline", 0, "dreamerv2")
    assert row["latent_error"] == "none" and math.isnan(row["sigma2"]) and row["lambda"] == 0.0
    assert (df["status"] == "finished").all() and np.isfinite(df["return"]).all()
    provenance = json.loads(provenance_path(out).read_text())
    assert provenance["variant"] == "baseline" and len(provenance["config_hash"]) == 12


def test_same_seeds_same_returns(tiny_run, tmp_path):
    """Deterministic, whatever the number of env worker processes."""
    first = _evaluate(tiny_run, tmp_path / "a.parquet", workers=1)
    second = _evaluate(tiny_run, tmp_path / "b.parquet", workers=2)
    assert first["return"].tolist() == second["return"].tolist()
    clean = first[first["condition"] == "clean"]["return"]
    assert clean.iloc[0] != clean.iloc[1]  # different seeds, different episodes


def test_diverged_run_gives_nan_rows(tiny_run, copy_run, tmp_path):
    run_dir = copy_run(tiny_run, status="diverged", model=False)  # the model is never loaded
    df = _evaluate(run_dir, tmp_path / "eval.parquet")
    assert list(df.columns) == COLUMNS and len(df) == 4 * len(SEEDS)
    assert df["return"].isna().all() and (df["status"] == "diverged").all()


def test_pixel_run_and_image_conditions(pixel_run, tmp_path):
    conditions = [parse_condition("rotation=10"), parse_condition("mask=0.25")]
    df = evaluate(pixel_run, tmp_path / "eval.csv", variant="baseline", conditions=conditions,
                  episode_seeds=SEEDS[:1])
    assert df["condition"].tolist() == ["rotation=10", "mask=0.25"] and np.isfinite(df["return"]).all()
    assert len(pd.read_csv(tmp_path / "eval.csv")) == 2


def test_protocol_conditions():
    labels = [c.label for c in protocol_conditions()]
    assert len(labels) == 1 + 22 and labels[:2] == ["clean", "noise=0.05"]
    assert not any(c.label.startswith(("rotation", "mask")) for c in protocol_conditions("vector"))


@pytest.mark.parametrize("conditions, message", [
    (["noise=abc"], "noise=abc"),
    (["blur=1"], "unknown perturbation family 'blur'"),
    (["noise=2"], "out of range"),
    (["rotation=10"], "observes vectors"),  # image-only perturbation on a vector run
])
def test_bad_specs(tiny_run, tmp_path, capsys, conditions, message):
    args = ["--run-dir", str(tiny_run), "--out", str(tmp_path / "x.parquet"), "--variant", "b",
            "--conditions", *conditions, "--episodes", "1"]
    assert main(["evaluate", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.parquet").exists()


def _break(run_dir, what):
    if what == "missing dir":
        return run_dir.parent / "nope", run_dir.parent / "nope"
    target = {"status": "status.json", "config": "config.yaml", "model": "model.pt", "no model": "model.pt",
              "running": "status.json"}[what]
    path = run_dir / target
    if what == "no model":
        path.unlink()
    elif what == "running":
        path.write_text(json.dumps({"status": "running"}))
    else:
        path.write_text("{not: [valid" if what != "model" else "garbage")
    return run_dir, path


@pytest.mark.parametrize("what", ["missing dir", "status", "config", "model", "no model", "running"])
@pytest.mark.parametrize("command", ["evaluate", "collect"])
def test_broken_run_dirs_name_the_path(tiny_run, copy_run, tmp_path, capsys, what, command):
    run_dir, culprit = _break(copy_run(tiny_run), what)
    args = ["--run-dir", str(run_dir), "--out", str(tmp_path / "out.parquet"), "--episodes", "1",
            "--episode-frames", "20"] + (["--variant", "b", "--conditions", "clean"] if command == "evaluate" else [])
    assert main([command, *args]) == 2
    err = capsys.readouterr().err
    assert str(culprit) in err and err.count("\n") == 1 and "Traceback" not in err


def _check_layout(path, key, shape, episodes, steps):
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    assert set(data) == {key, "action", "reward", "is_first", "is_terminal", "episode_seeds", "task",
                         "config_hash", "policy"}
    assert data[key].shape == (episodes, steps, *shape)
    assert data["action"].dtype == np.float32 and data["action"].shape[:2] == (episodes, steps)
    assert data["reward"].dtype == np.float32 and data["reward"].shape == (episodes, steps)
    assert (data["action"][:, 0] == 0).all() and (data["reward"][:, 0] == 0).all()
    assert np.abs(data["action"]).max() <= 1
    assert data["is_first"].dtype == bool and data["is_first"][:, 0].all() and not data["is_first"][:, 1:].any()
    assert data["is_terminal"].dtype == bool and not data["is_terminal"].any()
    return data


def test_collect_layout(heldout, tiny_run):
    data = _check_layout(heldout, "vector", (5,), 3, 61)  # conftest: 3 seeds, 120 frames
    assert data["vector"].dtype == np.float32
    assert data["episode_seeds"].tolist() == [1_000_000, 1_000_001, 1_000_002] and str(data["task"]) == "cartpole_swingup"
    assert str(data["policy"]) == "agent"
    assert str(data["config_hash"]) == json.loads((tiny_run / "status.json").read_text())["config_hash"]
    assert not list(heldout.parent.glob(".*.tmp"))


def test_collect_pixels(pixel_run, tmp_path):
    out = tmp_path / "heldout.npz"
    collect(pixel_run, out, episode_seeds=SEEDS)
    data = _check_layout(out, "image", (64, 64, 3), len(SEEDS), 11)
    assert data["image"].dtype == np.uint8


def test_collect_diverged_with_nan_weights_falls_back_to_random(pixel_run, copy_run, tmp_path):
    run_dir = copy_run(pixel_run, status="diverged")
    state = torch.load(run_dir / "model.pt", weights_only=True)
    next(v for v in state["agent"].values() if v.is_floating_point()).fill_(float("nan"))
    torch.save(state, run_dir / "model.pt")
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "model_sha256": file_digest(run_dir / "model.pt")}))
    with pytest.warns(UserWarning, match="random"):
        collect(run_dir, tmp_path / "heldout.npz", episode_seeds=SEEDS)
    data = _check_layout(tmp_path / "heldout.npz", "image", (64, 64, 3), len(SEEDS), 11)
    assert str(data["policy"]) == "random" and np.abs(data["action"][:, 1:]).max() > 0


def test_config_edited_after_training_is_refused(tiny_run, copy_run, tmp_path, capsys):
    run_dir = copy_run(tiny_run)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("seed: 0", "seed: 4"))
    args = ["--run-dir", str(run_dir), "--out", str(tmp_path / "out.parquet"), "--episodes", "1",
            "--episode-frames", "20", "--variant", "b", "--conditions", "clean"]
    assert main(["evaluate", *args]) == 2
    err = capsys.readouterr().err
    assert f"{config}: its run id" in err and "was config.yaml edited?" in err and err.count("\n") == 1


def test_a_replaced_model_is_refused(tiny_run, copy_run, tmp_path, capsys):
    """Other weights of the same shape in model.pt: not the model the run saved."""
    run_dir = copy_run(tiny_run)
    state = torch.load(run_dir / "model.pt", weights_only=True)
    next(v for v in state["agent"].values() if v.is_floating_point()).add_(1.0)
    torch.save(state, run_dir / "model.pt")
    args = ["--run-dir", str(run_dir), "--out", str(tmp_path / "out.parquet"), "--episodes", "1",
            "--episode-frames", "20", "--variant", "b", "--conditions", "clean"]
    assert main(["evaluate", *args]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir / 'model.pt'}: not the model this run saved" in err and err.count("\n") == 1
    assert not (tmp_path / "out.parquet").exists()
