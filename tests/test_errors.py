"""User errors are refused early, on one line naming the culprit, and leave nothing
behind that blocks the corrected rerun."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wmrobust.config import ConfigError, merge, resolve
from wmrobust.envs.config import TASK_CAMERAS
from wmrobust.experiment import Experiment

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def experiment(**overrides) -> Experiment:
    return Experiment(merge(CONFIG, overrides))


# ---- 4: conditions and tasks are checked when the DAG is built ---------------------------


def test_static_task_list_is_the_dm_control_suite():
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from dm_control import suite

    assert list(TASK_CAMERAS) == [f"{domain}_{task}" for domain, task in suite.ALL_TASKS]
    for domain, task in suite.ALL_TASKS:
        assert TASK_CAMERAS[f"{domain}_{task}"] == suite.load(domain, task).physics.model.ncam, (domain, task)


@pytest.mark.parametrize("overrides, message", [
    ({"scales": {"smoke": {"perturbation_levels": {"mask": [1.0]}}}},
     r"^scales\.smoke\.perturbation_levels\.mask: level 1\.0: .*mask=1 is out of range"),
    ({"perturbations": {"noise": [2.0]}}, r"^perturbations\.noise: level 2\.0: .*noise=2 is out of range"),
    ({"scales": {"smoke": {"perturbation_levels": {"blur": [0.1]}}}},
     r"^scales\.smoke\.perturbation_levels: unknown perturbation family 'blur' \(valid: noise, "),
    ({"scales": {"paper": {"perturbation_levels": {"rotation": [200]}}}},
     r"^scales\.paper\.perturbation_levels\.rotation: level 200"),
    ({"task_overrides": {"walker_fly": {"env": {"task": "walker_fly"}}}},
     r"^task_overrides\.walker_fly: unknown dm_control task 'walker_fly'; valid tasks: acrobot_swingup"),
    ({"task_overrides": {"walker_walk": {"env": {"task": "walker_wlak"}}}},
     r"^task_overrides\.walker_walk\.env\.task: unknown dm_control task 'walker_wlak'"),
])
def test_bad_conditions_and_tasks_refused_at_dag_build(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        experiment(**overrides)
    assert "\n" not in str(info.value)


def test_good_conditions_pass():
    exp = experiment(perturbations={"mask": [0.0, 0.99], "latent": [100]})
    assert "clean" in exp.conditions


@pytest.mark.parametrize("env, key", [
    ({"task": "foo"}, "env.task: unknown dm_control task 'foo'"),
    ({"task": "walker_fly"}, "env.task: unknown dm_control task 'walker_fly'"),
    ({"camera": 2}, "env.camera: 2 is not a camera of walker_walk (ids 0..1"),
    ({"camera": -1}, "env.camera: -1"),
    ({"task": "quadruped_walk", "camera": 4}, "env.camera: 4 is not a camera of quadruped_walk"),
])
def test_env_task_and_camera_checked_by_the_config(env, key):
    with pytest.raises(ConfigError) as info:
        resolve({"env": env})
    assert key in str(info.value)
    assert resolve({"env": {"task": "quadruped_walk", "camera": 3}}).env.camera == 3
