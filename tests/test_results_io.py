"""Atomic result writes, provenance, aggregation and `wmrobust status`."""

import json
import shutil
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wmrobust.aggregate import aggregate
from wmrobust.config import resolve, save_yaml
from wmrobust.io import atomic_path, provenance_path, read_table, write_table
from wmrobust import rundir
from wmrobust.cli import main

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path):
    target = tmp_path / "table.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_table_records_provenance(tmp_path):
    target = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"a": [1, 2]}), target, config_hash="abc", scale="smoke")
    meta = json.loads(provenance_path(target).read_text())
    assert meta["config_hash"] == "abc" and meta["scale"] == "smoke"
    assert {"git_commit", "packages", "created"} <= set(meta)
    assert meta["packages"]["numpy"] == np.__version__
    assert read_table(target)["a"].tolist() == [1, 2]


def test_read_table_names_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        read_table(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ValueError, match="bad.parquet"):
        read_table(bad)


def fake_run(root, task, variant, seed, status="finished", commit="aaa", error=None):
    """A run directory as `wmrobust train` leaves it (config, status, metrics)."""
    run_dir = root / "runs" / task / variant / f"seed{seed}"
    run_dir.mkdir(parents=True)
    overrides = {"env": {"task": task}, "seed": seed}
    if error:
        overrides["agent"] = {"latent_error": error}
    cfg = resolve(overrides)
    save_yaml(cfg, run_dir / "config.yaml")
    diverged = {"frames": 400, "loss_name": "loss_model", "value": "nan"} if status == "diverged" else None
    (run_dir / "status.json").write_text(
        json.dumps({"status": status, "frames": 800, "config_hash": cfg.hash(), "diverged_at": diverged,
                    "git_commit": commit, "pid": 1, "host": "elsewhere"})
    )
    frames = [200, 400, 600, 800]
    metrics = pd.DataFrame(
        {"frames": frames * 3, "split": ["train"] * 4 + ["eval"] * 4 + ["update"] * 4,
         "return": [1.0, 2, 3, 4, 10, 20, 30, 40] + [np.nan] * 4, "loss_model": np.arange(12.0)}
    )
    metrics.to_parquet(run_dir / "metrics.parquet")
    return run_dir


def test_aggregate_runs_and_curves_carry_identity_and_warn_on_mixed_commits(tmp_path):
    a = fake_run(tmp_path, "walker_walk", "baseline", 0, commit="aaa")
    b = fake_run(tmp_path, "walker_walk", "zd5", 0, status="diverged", commit="bbb",
                 error={"kind": "zero_drift", "sigma2": 5.0})
    inputs = [a / "status.json", a / "metrics.parquet", b / "status.json", b / "metrics.parquet"]
    runs = [{"task": "walker_walk", "variant": v, "seed": 0, "rid": json.loads((d / "status.json").read_text())["config_hash"]}
            for v, d in (("baseline", a), ("zd5", b))]
    with pytest.warns(UserWarning, match="2 git commits"):
        curves = aggregate("curves", inputs, runs, tmp_path / "curves.parquet", scale="smoke")
    assert len(curves) == 16 and set(curves["split"]) == {"train", "eval"}
    assert curves.loc[curves.variant == "zd5", "sigma2"].eq(5.0).all()
    assert set(curves.loc[curves.variant == "zd5", "status"]) == {"diverged"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = aggregate("runs", inputs, runs, tmp_path / "runs.parquet", scale="smoke")
    assert table.set_index("variant").loc["zd5", "diverged_at_frames"] == 400
    assert table.set_index("variant").loc["zd5", "agent.latent_error.kind"] == "zero_drift"
    meta = json.loads(provenance_path(tmp_path / "runs.parquet").read_text())
    assert meta["source_commits"] == ["aaa", "bbb"]
    assert meta["runs"] == [f"walker_walk/{r['variant']}/seed0-{r['rid']}" for r in runs]


def test_status_classifies_runs(tmp_path, capsys):
    results = tmp_path / "results"
    fake_run(results / "smoke", "walker_walk", "baseline", 0)
    fake_run(results / "smoke", "walker_walk", "nzd", 0, status="diverged")
    stale = fake_run(results / "smoke", "walker_walk", "zd5", 0, status="running")
    (stale / "checkpoint").mkdir()
    alive = fake_run(results / "smoke", "walker_walk", "zd5", 1, status="running")
    status = json.loads((alive / "status.json").read_text())
    status.update(pid=os.getpid(), host=None)
    (alive / "status.json").write_text(json.dumps(status))
    states = {(r["variant"], r["seed"]): r["state"] for r in rundir.scan(results / "smoke" / "runs")}
    assert states == {("baseline", "seed0"): "finished", ("nzd", "seed0"): "diverged",
                      ("zd5", "seed0"): "resumable", ("zd5", "seed1"): "running"}
    assert main(["status", str(results)]) == 0
    assert "1 diverged, 1 finished, 1 resumable, 1 running" in capsys.readouterr().out
    assert main(["status", str(results / "smoke")]) == 0  # one scale's folder
    assert "1 diverged, 1 finished, 1 resumable, 1 running" in capsys.readouterr().out


def test_status_finds_run_directories_anywhere(tmp_path, capsys):
    run = tmp_path / "manual" / "run"
    shutil.copytree(fake_run(tmp_path / "elsewhere", "walker_walk", "baseline", 0), run)
    assert main(["status", str(tmp_path / "manual")]) == 0
    out = capsys.readouterr().out
    assert str(run) in out and "finished" in out and json.loads((run / "status.json").read_text())["config_hash"] in out


def test_plan_refuses_unknown_scale(capsys):
    assert main(["plan", "--scale", "huge"]) == 2
    assert "scale: 'huge'" in capsys.readouterr().err


def test_plan_counts_the_cpus_a_gpu_job_holds_and_labels_its_guesses(tmp_path):
    from wmrobust.experiment import Experiment
    from wmrobust.plan import estimate, job_counts

    exp = Experiment.from_file(CONFIG, scale="paper")
    rows = {r["rule"]: r for r in estimate(exp, job_counts(exp, exp.artifact_ids), tmp_path)}
    train = rows["train"]
    assert train["gpu_hours"] > 0 and train["cpu_hours"] == pytest.approx(4 * train["gpu_hours"])  # threads 4
    assert train["basis"].startswith("guessed") and rows["aggregate"]["basis"] == "not estimated"
    assert rows["figures"]["jobs"] == 1  # Snakemake counts its target rule


def test_cache_serves_a_result_only_while_the_users_own_is_missing(tmp_path):
    from wmrobust.cache import result_path

    results, cache = tmp_path / "results" / "local", tmp_path / "cache" / "local"
    relative = "eval/walker_walk/baseline/seed0-0123456789ab.parquet"
    assert result_path(str(results), str(cache), relative) == f"{results}/{relative}"  # neither: train here
    (cache / relative).parent.mkdir(parents=True)
    (cache / relative).write_bytes(b"shipped")
    assert result_path(str(results), str(cache), relative) == f"{cache}/{relative}"
    assert result_path(str(results), str(cache), relative, use_cache=False) == f"{results}/{relative}"
    (results / relative).parent.mkdir(parents=True)
    (results / relative).write_bytes(b"own")
    assert result_path(str(results), str(cache), relative) == f"{results}/{relative}"


def test_aggregate_refuses_a_table_another_run_produced(tmp_path):
    table = tmp_path / "eval.parquet"
    write_table(pd.DataFrame({"return": [1.0]}), table, config_hash="aaaaaaaaaaaa")
    runs = [{"task": "walker_walk", "variant": "baseline", "seed": 0, "rid": "bbbbbbbbbbbb"}]
    with pytest.raises(ValueError, match=r"eval.parquet: its provenance says run 'aaaaaaaaaaaa' produced it, "
                                         r"not run bbbbbbbbbbbb"):
        aggregate("eval", [table], runs, tmp_path / "out.parquet", scale="smoke")
    assert not (tmp_path / "out.parquet").exists()


def test_plan_shows_the_grid_progress_and_the_hours_left(tmp_path, capsys):
    from wmrobust.experiment import Experiment
    from wmrobust.plan import grid_progress

    exp = Experiment.from_file(CONFIG, scale="local")
    runs = sorted(exp.runs)
    results, cache = tmp_path / "results" / "local", tmp_path / "cache" / "local"
    for root, run, status, hours in ((results, runs[0], "finished", 1.0), (cache, runs[1], "finished", 3.0),
                                     (results, runs[2], "stopped", 0.5)):
        run_dir = root / "runs" / run.path
        run_dir.mkdir(parents=True)
        frames = 100_000 if status == "finished" else 25_000
        (run_dir / "status.json").write_text(json.dumps({"status": status, "frames": frames}))
        pd.DataFrame({"wall_time": [0.0, hours * 3600]}).to_parquet(run_dir / "metrics.parquet")
    # A resumed train job's benchmark times its last part only: the plan's train row ignores it.
    (results / "benchmarks" / "train").mkdir(parents=True)
    (results / "benchmarks" / "train" / "last-part.tsv").write_text("s\th:m:s\n60.0\t0:01:00\n")
    progress = grid_progress(exp, runs, results, cache)
    states = [progress["states"][r]["state"] for r in runs]
    assert states[:3] == ["finished", "cached", "stopped"] and set(states[3:]) == {"to do"}
    assert progress["spent"] == pytest.approx(4.5) and progress["per_run"] == pytest.approx(2.0)
    assert progress["left"] == pytest.approx(2.0 * (len(runs) - 3) + 2.0 * 0.75)  # the stopped run is 1/4 done
    assert main(["plan", "--scale", "local", "--results", str(tmp_path / "results"),
                             "--cache", str(tmp_path / "cache"), "--cores", "2"]) == 0
    out = capsys.readouterr().out
    assert f"grid progress: 1 cached, 1 finished, 1 stopped, {len(runs) - 3} to do" in out
    assert f"about {progress['left']:.1f} left ({progress['left'] / 2:.1f} h on 2 cores" in out
    train = next(line.split() for line in out.splitlines() if line.startswith("train "))
    assert train[1:4] == [str(len(runs)), "2.000", f"{2.0 * len(runs):.1f}"] and train[-1] == "measured"  # 1 thread
