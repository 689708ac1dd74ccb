"""The workflow on a real SLURM cluster (one node, brought up by the test).

A slice of the smoke scale runs twice, in two copies of the workflow: with
the local executor, and through workflow/profiles/slurm (the real profile,
with tests/slurm/profile.yaml for the test cluster's settings and
tests/slurm/config.yaml for shorter training). While the SLURM run trains,
one training job is cancelled with scancel: its SIGTERM makes training write
a checkpoint and exit, the profile's retries resubmit the job, and the new
job resumes from the checkpoint. The test checks that every compute job went
through sbatch, that the cancelled run resumed, that the artifact was built,
and that every aggregated table equals the local run's (training resumes
exactly, so only wall-clock columns differ).
"""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from slurm_cluster import missing_tools, slurm_cluster

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "environment.yml")
TEST_CONFIG = REPO / "tests" / "slurm" / "config.yaml"
TEST_PROFILE = REPO / "tests" / "slurm" / "profile.yaml"

# A slice of the smoke grid, so its aggregates and artifacts sit in a selection
# folder of their own: results/smoke/aggregate/slurm/, figures/smoke/slurm/.
SELECTION = "slurm"
SLICE = ["--configfile", str(TEST_CONFIG),
         "--config", "scale=smoke", "tasks=[walker_walk]", "variants=[baseline,zd5]", "seeds=[0]",
         f"selection={SELECTION}"]
# fig3 (learning curves: train only) plus the tables that need evaluate,
# collect and rollout, so every compute rule runs.
TARGETS = ["fig3", f"results/smoke/aggregate/{SELECTION}/robustness_walker/eval.parquet",
           f"results/smoke/aggregate/{SELECTION}/rollout_error/rollout.parquet"]
COMPUTE_RULES = ("train", "evaluate", "collect", "rollout")
# The cancelled run and its log, named by the run id snakemake gives them.
CANCELLED_RUN = "results/smoke/runs/walker_walk/baseline/seed0-*"
CANCELLED_LOG = "results/smoke/logs/train/walker_walk/baseline/seed0-*.log"
PREFILL_FRAMES = 400  # tests/slurm/config.yaml: learning starts here
# Columns that measure speed, not results.
UNTIMED = ("wall_time", "updates_per_second")
RUN_TIMEOUT = 1200


def require_slurm():
    """Skips without Slurm/MUNGE or root, except in CI, where they must be there."""
    problems = []
    if missing := missing_tools():
        problems.append(f"missing {', '.join(missing)} (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        problems.append("not root (the test cluster's daemons run as root)")
    if problems and os.environ.get("CI"):
        pytest.fail("CI must run the SLURM test: " + "; ".join(problems))
    if problems:
        pytest.skip("; ".join(problems))


def copy_workflow(dest: Path) -> Path:
    dest.mkdir()
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, env=None) -> subprocess.Popen:
    with open(workdir / "snakemake.out", "w") as log:
        return subprocess.Popen(["snakemake", *TARGETS, *args, *SLICE], cwd=workdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, workdir: Path) -> str:
    """Waits for snakemake; returns its output, failing the test if it failed."""
    try:
        proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=60)
    out = (workdir / "snakemake.out").read_text()
    assert proc.returncode == 0, f"snakemake in {workdir} failed ({proc.returncode}):\n{out[-6000:]}"
    return out


def wait_until(ready, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def run_status(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def one_path(workdir: Path, pattern: str) -> Path | None:
    """The one path under ``workdir`` matching ``pattern``; None before it exists."""
    paths = sorted(workdir.glob(pattern))
    assert len(paths) <= 1, f"several paths match {pattern}: {paths}"
    return paths[0] if paths else None


def cancel_training_midway(cluster, workdir: Path, proc: subprocess.Popen) -> dict:
    """scancels the baseline's training job once it learns; returns what happened."""

    def learning_job():
        if proc.poll() is not None:
            out = (workdir / "snakemake.out").read_text()
            pytest.fail(f"snakemake ended before a training job could be cancelled:\n{out[-6000:]}")
        job = next((j for j in cluster.jobs() if j["comment"].startswith("rule_train_")
                    and "baseline" in j["comment"] and j["state"] == "RUNNING"), None)
        run_dir = one_path(workdir, CANCELLED_RUN)
        status = run_status(run_dir) if run_dir else {}
        if job and status.get("status") == "running" and status.get("frames", 0) >= PREFILL_FRAMES:
            return job, status["frames"]
        return None

    job, frames = wait_until(learning_job, 600, "the baseline training job to start learning")
    cluster.run("scancel", job["id"])
    wait_until(lambda: next(j for j in cluster.jobs() if j["id"] == job["id"])["state"] == "CANCELLED",
               120, f"job {job['id']} to end")
    run_dir = one_path(workdir, CANCELLED_RUN)
    wait_until(lambda: next(run_dir.glob("checkpoint/*"), None), 60, f"a checkpoint in {run_dir} after SIGTERM")
    return {"job": job["id"], "frames": frames}


def aggregated_tables(workdir: Path) -> dict[str, pd.DataFrame]:
    tables = {}
    for path in sorted(workdir.glob("results/*/aggregate/**/*.parquet")):
        df = pd.read_parquet(path).drop(columns=list(UNTIMED), errors="ignore")
        tables[str(path.relative_to(workdir))] = df.reset_index(drop=True)
    return tables


@pytest.fixture(scope="module")
def cluster():
    require_slurm()
    with slurm_cluster() as running:
        yield running


def test_cluster_runs_a_gpu_job(cluster, tmp_path):
    out = tmp_path / "job.out"
    job = cluster.run("sbatch", "--parsable", "--gpus=1", f"--output={out}",
                      "--wrap", "srun printenv CUDA_VISIBLE_DEVICES").strip()
    wait_until(lambda: next(j for j in cluster.jobs() if j["id"] == job)["state"] == "COMPLETED", 60,
               f"job {job} to complete")
    assert out.read_text().strip() == "0"


@pytest.mark.slow
def test_workflow_on_slurm_with_a_cancelled_training_job(cluster, tmp_path):
    started = time.monotonic()
    local = copy_workflow(tmp_path / "local")
    finish(snakemake(local, "--cores", "2"), local)
    local_s = time.monotonic() - started

    remote = copy_workflow(tmp_path / "slurm")
    proc = snakemake(remote, "--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm"),
                     "--profile", str(TEST_PROFILE), env=cluster.env)
    cancelled = cancel_training_midway(cluster, remote, proc)
    out = finish(proc, remote)
    print(f"local run {local_s:.0f} s, SLURM run {time.monotonic() - started - local_s:.0f} s; "
          f"cancelled job {cancelled['job']} at frames {cancelled['frames']}")

    # Every compute job went through sbatch, none ran in the snakemake process.
    ran_locally = re.findall(rf"^localrule ({'|'.join(COMPUTE_RULES)}):", out, re.M)
    assert not ran_locally, f"compute rules ran outside SLURM: {ran_locally}"
    submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", out))
    run_id = re.search(r"^SLURM run ID: (\S+)", out, re.M).group(1)  # every job's name
    jobs = {j["id"]: j for j in cluster.jobs() if j["name"] == run_id}
    assert set(submitted) == set(jobs), f"snakemake submitted {sorted(submitted)}, SLURM ran {sorted(jobs)}"
    rules = [re.match(r"rule_(\w+?)_wildcards_", j["comment"]).group(1) for j in jobs.values()]
    expected = {"train": 3, "evaluate": 2, "collect": 1, "rollout": 2}  # 2 runs; train once more (retry)
    assert {r: rules.count(r) for r in set(rules)} == expected, f"jobs per rule: {rules}"
    states = {id_: j["state"] for id_, j in jobs.items()}
    assert states == {id_: "CANCELLED" if id_ == cancelled["job"] else "COMPLETED" for id_ in jobs}, states
    for id_, log in submitted.items():
        assert Path(log).is_file(), f"no SLURM log {log} for job {id_}"
    for id_, job in jobs.items():  # tests/slurm/config.yaml gives training a GPU
        wants_gpu = "TresPerJob=gres:gpu:1" in cluster.run("scontrol", "show", "job", id_).split()
        assert wants_gpu == job["comment"].startswith("rule_train_"), f"job {id_} ({job['comment']}) GPU request"

    assert list(remote.glob(f"figures/*/{SELECTION}/fig3.png")), "fig3 was not built"
    local_tables, remote_tables = aggregated_tables(local), aggregated_tables(remote)
    assert local_tables and set(remote_tables) == set(local_tables)
    for name, expected_table in local_tables.items():
        pd.testing.assert_frame_equal(remote_tables[name], expected_table, obj=name)

    # Training took the SIGTERM: it wrote its checkpoint and exited 143 (not killed,
    # 137), and the retried job resumed from the checkpoint instead of starting over.
    cancelled_log = Path(submitted[cancelled["job"]]).read_text()
    assert "wmrobust train exited 143" in cancelled_log, cancelled_log[-3000:]
    train_log = one_path(remote, CANCELLED_LOG).read_text()
    resumed = re.search(r"resuming from checkpoint at frames (\d+)", train_log)
    assert resumed, f"{CANCELLED_LOG} does not say the retry resumed:\n{train_log[-3000:]}"
    assert int(resumed.group(1)) >= cancelled["frames"]
    cancelled_run = one_path(remote, CANCELLED_RUN)
    assert run_status(cancelled_run)["status"] == "finished"
    assert not (cancelled_run / "checkpoint").exists()
