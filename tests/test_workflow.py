"""The Snakemake workflow: dry-runs of every scale, config validation, lint,
and (slow) the whole smoke pipeline end to end. Every Snakemake call runs in a
scratch copy of the workflow, never in the repository, so the tests neither see
nor touch the user's results/ and figures/."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wmrobust.config import merge
from wmrobust.experiment import Experiment
from wmrobust.plan import job_counts

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "config.yaml"


def workflow_copy(dest: Path) -> Path:
    """The workflow in a fresh folder, so a run never touches the repository's results."""
    dest.mkdir(parents=True)
    for name in ("Snakefile", "workflow", "config", "environment.yml"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One scratch copy of the workflow for this module's dry-runs."""
    return workflow_copy(tmp_path_factory.mktemp("workflow") / "work")


def snakemake(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_outputs(output: str) -> list[str]:
    """Every output path a dry-run's job listing names."""
    return [f for line in re.findall(r"^\s+output: (.+)$", output, re.M) for f in line.split(", ")]


def job_stats(output: str) -> dict[str, int]:
    """Rule -> job count from snakemake's 'Job stats' table."""
    block = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M) if m.group(1) != "total"}


@pytest.mark.parametrize("scale", ["smoke", "local", "paper"])
def test_dry_run_of_each_scale_plans_the_grid_plan_reports(scale, scratch):
    proc = snakemake("-n", "--cores", "2", "figures", "--config", f"scale={scale}", "--quiet", "rules", cwd=scratch)
    exp = Experiment.from_file(CONFIG, scale=scale)
    assert job_stats(proc.stdout + proc.stderr) == job_counts(exp, exp.artifact_ids)


def test_jobs_are_scheduled_seed_major_and_results_before_more_training(tmp_path):
    """Training runs of seed 0 come first, then seed 1...; within a seed, a run that stopped
    part-way resumes before new ones start; a finished run's evaluation, held-out and rollout
    jobs come before any further training."""
    work = workflow_copy(tmp_path / "work")
    exp = Experiment.from_file(CONFIG, scale="local")
    stopped = work / "results" / "local" / "runs" / exp.run("walker_walk", "zd5", 1).path
    (stopped / "checkpoint").mkdir(parents=True)
    (stopped / "status.json").write_text('{"status": "stopped", "frames": 25000}')
    proc = snakemake("-n", "--cores", "2", "figures", "--config", "scale=local", cwd=work)
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    wildcards: .*?(?:variant=(\w+), )?seed=(\d+).*\n(?:    priority: (\S+)\n)?",
                      proc.stdout, re.M)
    counts = job_counts(exp, exp.artifact_ids)
    assert len(jobs) == sum(counts[rule] for rule in ("train", "evaluate", "collect", "rollout"))
    for rule, variant, seed, priority in jobs:
        if rule == "train":
            expected = -int(seed) + (0.125 if (variant, int(seed)) == ("zd5", 1) else 0)  # 25k of 100k frames
        else:
            expected = 1
        assert float(priority or 0) == expected, (rule, variant, seed, priority)


def test_the_shipped_local_cache_spares_its_runs(tmp_path):
    """Every run shipped in cache/local is a run of the local grid's config (a changed config
    or run id would orphan it), and a clone with that cache plans no train, evaluate, collect
    or rollout job for it: the grid goes on where the shipped results stop."""
    work = workflow_copy(tmp_path / "work")
    shutil.copytree(REPO / "cache" / "local", work / "cache" / "local")
    exp = Experiment.from_file(CONFIG, scale="local")
    folders = {str(p.relative_to(work / "cache" / "local" / "runs")) for p in (work / "cache" / "local" / "runs").glob("*/*/*")}
    shipped = [run for run in exp.runs if run.path in folders]
    assert folders and {run.path for run in shipped} == folders, sorted(folders - {run.path for run in shipped})
    proc = snakemake("-n", "--cores", "2", "figures", "--config", "scale=local", cwd=work)
    compute = ("train", "evaluate", "collect", "rollout")
    jobs = re.findall(rf"^rule ({'|'.join(compute)}):\n(?:    .*\n)*?    wildcards: .*rid=(\w+)", proc.stdout, re.M)
    stats = job_stats(proc.stdout + proc.stderr)
    assert len(jobs) == sum(stats.get(rule, 0) for rule in compute)  # every compute job's run id was read
    assert not {run.rid for run in shipped} & {rid for _, rid in jobs}
    assert stats.get("train", 0) == len(exp.runs) - len(shipped)  # none once the whole grid is shipped


def test_single_artifact_target_builds_only_its_runs(scratch):
    proc = snakemake("-n", "--cores", "2", "fig3", "--quiet", "rules", cwd=scratch)
    stats = job_stats(proc.stdout + proc.stderr)
    exp = Experiment.from_file(CONFIG)
    assert stats["train"] == len(exp.artifact_runs("fig3"))
    assert "evaluate" not in stats and "rollout" not in stats


def test_artifact_outside_the_scale_is_refused_by_name(scratch):
    proc = snakemake("-n", "--cores", "2", "fig5", "--config", "scale=local", check=False, cwd=scratch)
    assert proc.returncode != 0
    assert "artifact 'fig5' is not built at scale 'local'" in proc.stdout + proc.stderr


def test_new_variant_and_task_need_no_code_change(tmp_path, scratch):
    extra = {
        "task_overrides": {"cheetah_run": {"env": {"task": "cheetah_run"}}},
        "variant_overrides": {"zd2": {"agent": {"latent_error": {"kind": "zero_drift", "sigma2": 2.0}}}},
        "scales": {"smoke": {"tasks": ["walker_walk", "cheetah_run"]}},
        "artifacts": {"fig1": {"runs": {"walker_walk": ["baseline", "zd2"], "cheetah_run": ["baseline", "zd2"]}}},
    }
    extra_file = tmp_path / "extra.yaml"
    extra_file.write_text(yaml.safe_dump(extra))
    proc = snakemake("-n", "--cores", "2", "fig1", "--configfile", str(CONFIG), str(extra_file), cwd=scratch)
    out = proc.stdout + proc.stderr
    exp = Experiment(merge(yaml.safe_load(CONFIG.read_text()), extra))
    for task, variant, seed in (("walker_walk", "zd2", 0), ("cheetah_run", "zd2", 1), ("cheetah_run", "baseline", 0)):
        assert f"runs/{exp.run(task, variant, seed).path}/model.pt" in out
    # A grid other than config.yaml's builds its artifacts in a folder of its own.
    assert "figures/smoke/custom-" in out and "figures/smoke/fig1.png" not in out


def test_a_scale_defined_in_a_configfile_builds_in_a_folder_of_its_own(tmp_path, scratch):
    extra = tmp_path / "extra.yaml"
    mine = {**yaml.safe_load(CONFIG.read_text())["scales"]["smoke"], "description": "a scale of my own"}
    extra.write_text(yaml.safe_dump({"scales": {"mine": mine}}))
    proc = snakemake("-n", "--cores", "2", "fig3", "--configfile", str(CONFIG), str(extra), "--config", "scale=mine",
                     cwd=scratch)
    assert "figures/mine/custom-" in proc.stdout + proc.stderr


def test_subset_and_extra_seed_plan_only_their_runs(scratch):
    proc = snakemake(
        "-n", "--cores", "2", "runs", "--config", "tasks=[walker_walk]", "variants=[baseline,zd5]", "seeds=[1,7]",
        cwd=scratch,
    )
    out = proc.stdout + proc.stderr
    assert job_stats(out)["train"] == 4
    assert "walker_walk/zd5/seed7-" in out


@pytest.mark.parametrize(
    ("override", "culprit"),
    [
        ("tasks=[quadruped_walk]", "tasks: 'quadruped_walk' is not a task of scale 'local'"),
        ("variants=[aug]", "variants: ['aug'] leaves nothing to build at scale 'local'"),
    ],
)
def test_selection_that_leaves_nothing_names_the_key(override, culprit, scratch):
    proc = snakemake("-n", "--cores", "2", "figures", "--config", "scale=local", override, check=False, cwd=scratch)
    assert proc.returncode != 0
    assert culprit in proc.stdout + proc.stderr
    assert "IndexError" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("override", "culprit"),
    [
        ("scale=nope", "scale: 'nope' is not a defined scale"),
        ("variants=[baseline,zd9]", "unknown variant 'zd9'"),
        ("tasks=[walker_run]", "unknown task 'walker_run'"),
        ('variant_overrides={"zd5": {"agent": {"latent_eror": {}}}}', "agent.latent_eror"),
        ('variant_overrides={"zd5": {"agent": {"jacobian": {"estimator": "magic"}}}}', "agent.jacobian.estimator"),
        ('scales={"smoke": {"seeds": "many"}}', "seeds"),
    ],
)
def test_bad_config_is_refused_naming_the_key(override, culprit, scratch):
    proc = snakemake("-n", "--cores", "2", "figures", "--config", override, check=False, cwd=scratch)
    assert proc.returncode != 0
    assert culprit in proc.stdout + proc.stderr


def test_malformed_config_yaml_is_named_with_its_line(tmp_path):
    work = workflow_copy(tmp_path / "work")
    with open(work / "config" / "config.yaml", "a") as f:
        f.write("seeds: [0,\n")
    proc = snakemake("-n", "--cores", "1", "figures", check=False, cwd=work)
    assert proc.returncode != 0
    assert "config/config.yaml: not valid YAML" in proc.stdout + proc.stderr
    assert re.search(r"line \d+", proc.stdout + proc.stderr)


def test_lint_is_clean(scratch):
    proc = snakemake("--lint", check=False, cwd=scratch)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_formatted():
    snakefmt = shutil.which("snakefmt")
    assert snakefmt, "snakefmt is a test dependency (pip install -e '.[test]')"
    files = [str(REPO / "Snakefile"), *map(str, sorted((REPO / "workflow" / "rules").glob("*.smk")))]
    proc = subprocess.run([snakefmt, "--check", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_slurm_profile_resolves_in_a_dry_run(scratch):
    proc = snakemake(
        "-n", "--workflow-profile", "workflow/profiles/slurm", "figures", "--config", "scale=paper", "--quiet", "rules",
        cwd=scratch,
    )
    assert job_stats(proc.stdout + proc.stderr)["train"] > 0


# The README's main job builds the whole smoke grid (CI runs it before the tests). The
# end-to-end test runs the same machinery on a smoke grid cut to one task and three
# variants, which still reaches every rule and every notebook, at a sixth of the cost.
END_TO_END_GRID = {"tasks": ["walker_walk"], "variants": ["baseline", "zd5", "nzd"]}


def end_to_end_copy(dest: Path) -> Path:
    """A workflow copy whose smoke scale is END_TO_END_GRID."""
    work = workflow_copy(dest)
    path = work / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["scales"]["smoke"].update(END_TO_END_GRID)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return work


@pytest.mark.slow
def test_smoke_pipeline_end_to_end(tmp_path):
    work = end_to_end_copy(tmp_path / "work")
    snakemake("--cores", "2", "figures", cwd=work)
    exp = Experiment.from_file(work / "config" / "config.yaml")
    notebooks = {exp.artifact(a)["notebook"] for a in exp.artifact_ids}
    assert notebooks == {p.stem for p in (REPO / "workflow" / "notebooks").glob("*.py")}
    figures = work / "figures" / "smoke"
    logs = work / "results" / "smoke" / "logs" / "artifacts"
    for artifact in exp.artifact_ids:
        assert (figures / f"{artifact}.caption.md").stat().st_size > 0, artifact
        assert (figures / f"{artifact}.provenance.json").exists(), artifact
        assert (logs / f"{artifact}.log").read_text().startswith(artifact), artifact
    assert (figures / "claims.md").read_text().count("verdict") >= 1

    again = snakemake("-n", "--cores", "2", "figures", cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr

    (figures / "table1.csv").unlink()
    rebuild = snakemake("-n", "--cores", "2", "table1", "--quiet", "rules", cwd=work)
    assert job_stats(rebuild.stdout + rebuild.stderr) == {"artifact_table": 1, "table1": 1}
    snakemake("--cores", "1", "table1", cwd=work)
    assert (figures / "table1.csv").exists()

    report = snakemake("--cores", "1", "figures", "--report", str(tmp_path / "report.html"), cwd=work)
    assert report.returncode == 0
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "claims" in html and "fig3" in html

    check_other_grids_leave_the_full_grid_alone(work, tmp_path)
    check_the_cache_rebuilds_the_artifacts_without_training(work, tmp_path)
    check_code_changes_keep_the_finished_runs(work)


def check_code_changes_keep_the_finished_runs(work: Path) -> None:
    """A pull, a checkout or an editor save changes the workflow's mtimes: no train job is
    planned again. A rerun of train jobs anyway (an edited rule, --forcerun) keeps every run."""
    runs = work / "results" / "smoke" / "runs"
    before = {p: p.read_bytes() for p in runs.glob("*/*/*/[!.]*") if p.is_file()}  # not the lock
    for path in [*(work / "workflow").rglob("*"), work / "Snakefile"]:
        path.touch()
    dry = snakemake("-n", "--cores", "2", "runs", "--quiet", "rules", cwd=work)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout

    one = ("--config", "tasks=[walker_walk]", "variants=[baseline,zd5]", "seeds=[0]")
    snakemake("--cores", "2", "runs", *one, "--forcerun", "train", cwd=work)
    assert {p: p.read_bytes() for p in runs.glob("*/*/*/[!.]*") if p.is_file()} == before


def check_the_cache_rebuilds_the_artifacts_without_training(work: Path, tmp_path: Path) -> None:
    """`wmrobust cache` ships the full smoke grid's results; a fresh copy of the workflow
    with only that cache builds every artifact with no compute job, CSVs byte-identical,
    and rebuilds one deleted artifact alone. use_cache=false plans the whole grid again."""
    exported = subprocess.run([sys.executable, "-m", "wmrobust.cli", "cache", "--scale", "smoke"],
                              cwd=work, capture_output=True, text=True)
    exp = Experiment.from_file(work / "config" / "config.yaml")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert f"{len(exp.runs)} of {len(exp.runs)} runs" in exported.stdout
    assert not list((work / "cache").rglob("*.pt"))
    episodes = {p.relative_to(work / "cache" / "smoke").parts[:3] for p in (work / "cache").rglob("*.npz")}
    assert episodes == {("heldout", r.task, "baseline") for r in exp.stage_runs("rollout", exp.artifact_ids)}

    fresh = end_to_end_copy(tmp_path / "fresh")
    shutil.copytree(work / "cache", fresh / "cache")
    dry = snakemake("-n", "--cores", "2", "figures", "--quiet", "rules", cwd=fresh)
    plan = job_stats(dry.stdout + dry.stderr)
    assert not {"train", "evaluate", "collect", "rollout"} & set(plan), plan
    snakemake("--cores", "2", "figures", cwd=fresh)
    built, original = fresh / "figures" / "smoke", work / "figures" / "smoke"
    csvs = sorted(p.name for p in original.glob("*.csv"))
    assert csvs and sorted(p.name for p in built.glob("*.csv")) == csvs
    for name in csvs:
        assert (built / name).read_bytes() == (original / name).read_bytes(), name

    (built / "fig3.png").unlink()
    again = snakemake("-n", "--cores", "2", "figures", "--quiet", "rules", cwd=fresh)
    assert job_stats(again.stdout + again.stderr) == {"artifact_figure": 1, "figures": 1}

    own = snakemake("-n", "--cores", "2", "figures", "--config", "use_cache=false", "--quiet", "rules", cwd=fresh)
    assert job_stats(own.stdout + own.stderr)["train"] == len(exp.runs)


def check_other_grids_leave_the_full_grid_alone(work: Path, tmp_path: Path) -> None:
    """The README's subset and preset examples and a changed variant value, after the
    full smoke grid is built: they retrain nothing the full grid has, build their
    artifacts in folders of their own, and leave the full grid's files as they were."""
    figures = work / "figures" / "smoke"
    runs = work / "results" / "smoke" / "runs"
    before = {p: p.read_bytes() for p in [*figures.glob("*.*"), *runs.glob("*/*/*/model.pt")]}

    subset = ("--config", "tasks=[walker_walk]", "seeds=[0,1]", "variants=[baseline,zd5]")
    dry = snakemake("-n", "--cores", "2", "figures", *subset, cwd=work)
    out = dry.stdout + dry.stderr
    plan = job_stats(out)
    assert not {"train", "evaluate", "collect", "rollout"} & set(plan), plan
    # Every artifact the subset plans goes to one folder of its own (the dry-run's outputs);
    # one of them is built for real, which spares building all sixteen a third time here.
    outputs = planned_outputs(out)
    folders = {Path(f).parent for f in outputs if f.startswith("figures/")}
    assert len(folders) == 1 and next(iter(folders)).name.startswith("custom-"), folders
    snakemake("--cores", "2", "claims", *subset, cwd=work)
    built = sorted(figures.glob("custom-*/claims.md"))
    assert len(built) == 1, "the subset's artifacts go to one folder of their own"

    exp = Experiment.from_file(work / "config" / "config.yaml")
    preset = snakemake("-n", "--cores", "2", "figures", "--config",
                       'scales={"smoke": {"run": {"agent": {"preset": "dreamerv3"}}}}', "--quiet", "rules", cwd=work)
    assert job_stats(preset.stdout + preset.stderr)["train"] == len(exp.runs), "DreamerV3 runs are new runs"

    levels = snakemake("-n", "--cores", "2", "figures", "--config",
                       'scales={"smoke": {"perturbation_levels": {"noise": [0.2]}}}', cwd=work)
    out = levels.stdout + levels.stderr
    plan = job_stats(out)
    assert plan["evaluate"] == job_counts(exp, exp.artifact_ids)["evaluate"], plan
    assert not {"train", "collect", "rollout"} & set(plan), plan
    outputs = planned_outputs(out)
    evaluated = [f for f in outputs if "/eval/" in f]
    assert evaluated and not [f for f in evaluated if (work / f).exists()], "other levels: files of their own"

    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({"variant_overrides": {"zd5": {"agent": {"latent_error": {
        "kind": "zero_drift", "sigma2": 4.0}}}}}))
    snakemake("--cores", "2", "runs", "--configfile", str(work / "config" / "config.yaml"), str(changed),
              "--config", "tasks=[walker_walk]", "seeds=[0]", "variants=[zd5]", cwd=work)
    zd5 = sorted(p.parent.name for p in runs.glob("walker_walk/zd5/seed0-*/status.json"))
    assert len(zd5) == 2, f"the changed config trains a new run beside the finished one: {zd5}"

    after = {p: p.read_bytes() for p in before}
    assert after == before, [str(p) for p in before if after[p] != before[p]]
    assert sorted(figures.glob("*.*")) == sorted(p for p in before if p.parent == figures)
