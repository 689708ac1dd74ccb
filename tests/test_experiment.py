"""The experiment grid: run identity in paths, seeds beyond the scale, empty selections,
and the folder of artifacts built from a grid other than the full one."""

from __future__ import annotations

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


def test_seed_selection_may_add_seeds_beyond_the_scale():
    assert experiment(seeds=["1", 7]).seeds == [1, 7]
    assert {r.seed for r in experiment(seeds=[7]).runs} == {7}
    with pytest.raises(ConfigError, match="seeds: -1 must be >= 0"):
        experiment(seeds=[-1]).seeds


def test_a_selection_that_empties_the_grid_names_its_key():
    with pytest.raises(ConfigError, match=r"tasks: \['quadruped_walk'\] leaves nothing to build at scale 'local'"):
        experiment(scale="local", tasks=["quadruped_walk"]).runs


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
