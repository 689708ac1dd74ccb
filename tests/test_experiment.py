"""The experiment grid: run identity in paths, seeds beyond the scale, empty selections,
and the folder of artifacts built from a grid other than the full one."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from wmrobust.config import ConfigError, NOT_IDENTITY, merge, resolve
from wmrobust.experiment import Experiment

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())


def experiment(**overrides) -> Experiment:
    return Experiment(merge(CONFIG, overrides))


def test_identity_leaves_out_only_the_log_and_checkpoint_cadence():
    base = resolve({})
    assert NOT_IDENTITY == ("train.checkpoint_every_seconds", "train.log_every_frames")
    for key, changed in (("checkpoint_every_seconds", 5.0), ("log_every_frames", 7)):
        assert resolve({"train": {key: changed}}).hash() == base.hash(), key
    # How a run computes changes its floating-point results, so it is part of its identity.
    for key, changed in (("threads", 3), ("device", "cpu"), ("compile", True), ("eval_every_frames", 5000)):
        assert resolve({"train": {key: changed}}).hash() != base.hash(), key
    assert resolve({"agent": {"kl_free": 0.5}}).hash() != base.hash()


def test_run_paths_carry_the_run_id_and_change_with_the_config():
    full = experiment()
    run = full.run("walker_walk", "zd5", 0)
    assert run.path == f"walker_walk/zd5/seed0-{full.run_config('walker_walk', 'zd5', 0).hash()}"
    changed = experiment(variant_overrides={"zd5": {"agent": {"latent_error": {"sigma2": 4.0}}}})
    assert changed.run("walker_walk", "zd5", 0).path != run.path
    assert changed.run("walker_walk", "baseline", 0) == full.run("walker_walk", "baseline", 0)


def test_a_task_overrides_entry_is_its_task():
    cheetah = experiment(task_overrides={"cheetah_run": {"agent": {"size": "tiny"}}},
                         scales={"smoke": {"tasks": ["walker_walk", "cheetah_run"]}},
                         artifacts={"fig1": {"runs": {"cheetah_run": ["baseline"]}}})
    assert cheetah.run_config("cheetah_run", "baseline", 0).env.task == "cheetah_run"
    bare = copy.deepcopy(CONFIG)  # the entries without their env.task: the same runs
    for overrides in bare["task_overrides"].values():
        del overrides["env"]["task"]
    assert Experiment(bare).runs == experiment().runs
    for overrides, message in [
        ({"task_overrides": {"walker_run": {"env": {"task": "cheetah_run"}}}},
         r"^task_overrides\.walker_run\.env\.task: 'cheetah_run' is not the entry's name 'walker_run'"),
        ({"variant_overrides": {"zd5": {"env": {"task": "cheetah_run"}}}},
         r"^variant_overrides\.zd5\.env\.task: 'cheetah_run': a run's task is the name of its task_overrides entry"),
        ({"scales": {"paper": {"run": {"env": {"task": "walker_walk"}}}}}, r"^scales\.paper\.run\.env\.task: "),
    ]:
        with pytest.raises(ConfigError, match=message):
            experiment(**overrides)


def test_seed_selection_may_add_seeds_beyond_the_scale():
    assert experiment(seeds=["1", 7]).seeds == [1, 7]
    assert {r.seed for r in experiment(seeds=[7]).runs} == {7}
    with pytest.raises(ConfigError, match=r"seeds: -1 must be in \[0, 2\*\*64\)"):
        experiment(seeds=[-1]).seeds


def test_a_selection_that_empties_the_grid_names_its_key():
    with pytest.raises(ConfigError, match=r"variants: \['aug'\] leaves nothing to build at scale 'local'"):
        experiment(scale="local", variants=["aug"]).runs


def test_captions_name_their_task_through_the_placeholder():
    """A caption says {task}, never a task's name, so an artifact drawn for another task names that one."""
    domains = {task.split("_")[0].capitalize() for task in CONFIG["task_overrides"]}
    for artifact_id, artifact in CONFIG["artifacts"].items():
        assert not [d for d in domains if d in artifact["caption"]], artifact_id


def test_a_task_added_halfway_says_what_to_add():
    """config/README.md, 'Adding a task': each of the three keys missing is named with the other two."""
    how = r"a task is added with three keys: a task_overrides entry, the task in scales.<scale>.tasks"
    with pytest.raises(ConfigError, match=rf"tasks: unknown task 'finger_spin' .*; {how}"):
        experiment(tasks=["finger_spin"])
    added = {"task_overrides": {"finger_spin": {}}}
    with pytest.raises(ConfigError, match=rf"tasks: 'finger_spin' is not a task of scale 'smoke' .*; {how}"):
        experiment(**added, tasks=["finger_spin"])
    added["scales"] = {"smoke": {"tasks": ["walker_walk", "quadruped_walk", "finger_spin"]}}
    with pytest.raises(ConfigError, match=rf"scales.smoke.tasks: no artifact of the scale has 'finger_spin' .*; {how}"):
        experiment(**added)
    added["artifacts"] = {"fig3": {"runs": {"finger_spin": ["baseline", "zd5", "zd5_jac"]}}}
    assert {r.variant for r in experiment(**added, tasks=["finger_spin"]).runs} == {"baseline", "zd5", "zd5_jac"}


def test_artifacts_of_other_grids_get_their_own_folder():
    reference = experiment()
    assert experiment().selection(reference) is None
    subset = experiment(tasks=["walker_walk"], variants=["baseline", "zd5"])
    name = subset.selection(reference)
    assert name.startswith("custom-") and name == subset.selection(reference)
    preset = experiment(scales={"smoke": {"run": {"agent": {"preset": "dreamerv3"}}}})
    assert preset.selection(reference) not in (None, name)
    assert experiment(selection="mine", seeds=[0]).selection(reference) == "mine"
    with pytest.raises(ConfigError, match="selection: 'fig1' is an artifact id"):
        experiment(selection="fig1").selection(reference)


def test_run_ids_are_pinned():
    """A run id changes only when what the run computes changes. A new config field keeps every id
    when it is registered in ADDED_FIELDS with the value that computes what runs did before it;
    if this test fails after adding a field, register it there (or say why every run must change)."""
    from wmrobust.config import ADDED_FIELDS

    assert resolve({}).hash() == "8789d2ee7317"
    pinned = {("smoke", "walker_walk", "baseline", 0): "e4f68efc689c",
              ("smoke", "quadruped_walk", "nzd_jac", 1): "652701ad6195",
              ("local", "walker_walk", "baseline", 0): "3b78aaf1401a",
              ("local", "walker_walk", "nzd_jac", 4): "9f646ead70d2"}
    for (scale, task, variant, seed), rid in pinned.items():
        assert experiment(scale=scale).run(task, variant, seed).rid == rid, (scale, task, variant, seed)
    for key, neutral in ADDED_FIELDS.items():
        section, name = key.split(".")
        assert resolve({section: {name: neutral}}).hash() == resolve({}).hash(), key


def test_an_artifact_defined_otherwise_builds_in_a_folder_of_its_own():
    reference = experiment()
    for changed in ({"artifacts": {"table1": {"families": ["noise"]}}},
                    {"artifacts": {"fig3": {"caption": "Another caption."}}}, {"min_seeds": 3}):
        assert experiment(**changed).selection(reference) is not None, changed


def test_evaluation_settings_name_their_result_files():
    """An override of evaluation or rollout settings writes files of its own: it never
    overwrites (nor is served) the results of other settings."""
    full = experiment()
    run = full.run("walker_walk", "baseline", 0)
    other_levels = experiment(scales={"smoke": {"perturbation_levels": {"noise": [0.2]}}})
    longer = experiment(scales={"smoke": {"rollout": {"horizon": 40}}})
    assert other_levels.result_file("eval", run) != full.result_file("eval", run)
    assert other_levels.result_file("rollout", run) == full.result_file("rollout", run)
    assert longer.result_file("rollout", run) != full.result_file("rollout", run)
    assert longer.result_file("eval", run) == full.result_file("eval", run)
    assert full.result_file("eval", run).startswith(f"eval/{run.path}/")


def test_captions_name_the_declared_variants_a_scale_does_not_run():
    from wmrobust.artifacts.spec import Spec, compose_caption

    local = experiment(scale="local")
    assert local.artifact_variants("fig1") == ["baseline", "zd5"]
    assert local.artifact_left_out("fig1") == ["zd01", "zd1"]
    assert experiment(scale="smoke").artifact_left_out("fig1") == []
    spec = Spec(artifact="fig1", caption="Robustness.", variants=local.artifact_variants("fig1"),
                tasks=["walker_walk"], scale="local", left_out=local.artifact_left_out("fig1"))
    assert "Not shown: zd01, zd1, which the local scale does not run" in compose_caption(spec)
