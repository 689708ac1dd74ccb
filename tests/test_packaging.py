"""pyproject.toml and environment.yml list the same dependencies (conda-forge is
unreachable here, so this is how environment.yml stays true), and the README's
quick start is the command CI runs."""

import re
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


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    test_command = re.search(r"```bash\n(bash \.ci/setup && .*pytest.*)\n```", readme).group(1)
    assert test_command.split("&& ", 1)[1] in ci
    assert "bash .ci/setup" in ci
