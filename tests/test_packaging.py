"""pyproject.toml and environment.yml list the same dependencies (conda-forge is
unreachable here, so this is how environment.yml stays true), the README's
quick start is the command CI runs, and .ci/setup and .ci/env pick the
environment the README promises (checked with --dry-run and fake environments,
without creating a real one)."""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def normalize(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    from_env = {normalize(r) for r in pip_section if not r.startswith("-")}
    assert from_env == {normalize(r) for r in project["dependencies"]}
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.removeprefix("python") == project["requires-python"]


def test_ci_runs_the_readme_main_job_then_its_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    main, tests = (re.search(r"```bash\n(bash \.ci/setup && .*" + what + r".*)\n```", readme).group(1)
                   for what in ("snakemake", "pytest"))
    assert "bash .ci/setup" in ci
    main_at, tests_at = ci.index(main.split("&& ", 1)[1]), ci.index(tests.split("&& ", 1)[1])
    assert main_at < tests_at, "the tests run after the main job, in the same clone"


def test_readme_commands_run_in_the_set_up_environment():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"```bash\n(bash \.ci/setup && .*)\n```", readme)
    assert len(commands) == 2, commands
    assert all(c.startswith("bash .ci/setup && .ci/env ") for c in commands), commands
    assert "snakemake --cores 2 figures" in commands[0]


def test_ci_asks_setup_for_slurm():
    # CI runs tests/test_slurm.py, which fails under CI without Slurm.
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^bash \.ci/setup --slurm$", ci, re.M), ci


def fake_repo(tmp_path: Path, venv: bool = False) -> Path:
    """A directory with this repository's .ci scripts (and a stub .venv/bin/python)."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    for name in ("setup", "env"):
        shutil.copy2(REPO / ".ci" / name, repo / ".ci" / name)
    if venv:
        python = repo / ".venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text("#!/bin/sh\necho stub python\n")
        python.chmod(0o755)
    return repo


def run_script(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "WMROBUST_SETUP_SLURM")}
    return subprocess.run(["bash", *args], cwd=repo, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def setup_plan(repo: Path, *args: str, **env: str) -> list[str]:
    done = run_script(repo, ".ci/setup", "--dry-run", *args, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def pip_installs(plan: list[str]) -> list[str]:
    return [line for line in plan if " -m pip install " in line]


def test_setup_without_an_active_environment_creates_and_installs_into_venv(tmp_path):
    repo = fake_repo(tmp_path)
    plan = setup_plan(repo)
    assert "run: python3 -m venv .venv" in plan
    installs = pip_installs(plan)
    assert len(installs) == 2 and all(line.startswith("run: .venv/bin/python -m pip") for line in installs)
    assert installs[0].endswith(" torch==2.13.0") and installs[1].endswith(" -e .[test]")
    assert plan.index("run: python3 -m venv .venv") < plan.index(installs[0])
    assert not (repo / ".venv").exists(), "--dry-run created the venv"


def test_setup_reuses_an_existing_venv(tmp_path):
    plan = setup_plan(fake_repo(tmp_path, venv=True))
    assert not any("-m venv" in line for line in plan)
    assert all(line.startswith("run: .venv/bin/python -m pip") for line in pip_installs(plan))


def test_setup_keeps_an_active_environment(tmp_path):
    repo = fake_repo(tmp_path, venv=True)
    for var, prefix in (("VIRTUAL_ENV", "/opt/some-venv"), ("CONDA_PREFIX", "/opt/conda/envs/wmrobust")):
        plan = setup_plan(repo, **{var: prefix})
        assert not any("-m venv" in line for line in plan)
        installs = pip_installs(plan)
        assert len(installs) == 2 and all(line.startswith(f"run: {prefix}/bin/python -m pip") for line in installs)


def test_setup_installs_slurm_only_when_asked(tmp_path):
    repo = fake_repo(tmp_path)

    def wanted(plan):
        return next(line for line in plan if line.startswith("apt wanted:")).split()[2:]

    assert "libegl1" in wanted(setup_plan(repo))
    assert not {"slurm-wlm", "munge"} & set(wanted(setup_plan(repo)))
    assert {"slurm-wlm", "munge"} <= set(wanted(setup_plan(repo, "--slurm")))
    assert {"slurm-wlm", "munge"} <= set(wanted(setup_plan(repo, WMROBUST_SETUP_SLURM="1")))
    assert run_script(repo, ".ci/setup", "--dry-run", "--bogus").returncode != 0


def test_env_runs_commands_in_the_venv_unless_an_environment_is_active(tmp_path):
    probe = ["sh", "-c", 'echo "$VIRTUAL_ENV"; python']
    repo = fake_repo(tmp_path, venv=True)
    done = run_script(repo, ".ci/env", *probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(repo / ".venv"), "stub python"]

    active = run_script(repo, ".ci/env", "sh", "-c", 'echo "$VIRTUAL_ENV:$PATH"', VIRTUAL_ENV="/opt/some-venv")
    assert active.stdout.strip() == f"/opt/some-venv:{os.environ['PATH']}"

    bare = run_script(fake_repo(tmp_path / "bare"), ".ci/env", "true")
    assert bare.returncode != 0 and "bash .ci/setup" in bare.stderr
