"""The family and result-kind registries are the one place to add a family or a table
kind: a throw-away entry is planned, parsed, applied, labelled and aggregated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from wmrobust import results
from wmrobust.aggregate import aggregate
from wmrobust.artifacts.figures import plot_robustness
from wmrobust.artifacts.spec import Spec, family_order
from wmrobust.cache import run_files
from wmrobust.config import merge
from wmrobust.envs import EnvConfig, make_env
from wmrobust.experiment import Experiment
from wmrobust.io import write_table
from wmrobust.perturb import FAMILIES, Family, SpecError, parse_condition
from wmrobust.plan import job_counts
from wmrobust.preview import rows

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def gain(observation, level, rng, spread):
    """A throw-away observation family: every pixel (or vector entry) times the level."""
    if spread is None:
        return np.clip(np.rint(observation * level), 0, 255).astype(np.uint8)
    return (observation * level).astype(np.float32)


@pytest.fixture
def gain_family():
    """'gain' registered first, so that plot order visibly comes from the registry
    (a family it did not know would be placed last)."""
    family = Family("gain", "observation", "brightness multiplied by", "brightness gain", 0.0, 2.0, False, True,
                    f"{__name__}:gain", levels=(0.5, 1.5), neutral=1.0)
    original = dict(FAMILIES)
    FAMILIES.clear()
    FAMILIES.update({"gain": family, **original})
    yield family
    FAMILIES.clear()
    FAMILIES.update(original)


def test_a_family_added_to_the_registry_is_planned_parsed_applied_and_labelled(gain_family):
    exp = Experiment(merge(CONFIG, {"perturbations": {"gain": [0.5, 1.5]},
                                    "scales": {"smoke": {"perturbation_levels": {"gain": [1.5]}}}}))
    assert "gain=1.5" in exp.condition_labels and exp.stage_ids["evaluate"]

    condition = parse_condition("noise=0.1,gain=0.5")
    assert condition.label == "gain=0.5,noise=0.1" and parse_condition(condition.label) == condition
    with pytest.raises(SpecError, match=r"gain \(brightness multiplied by\) must be in \(0, 2\]"):
        parse_condition("gain=3")

    cfg = EnvConfig(task="walker_walk", image_size=16, episode_frames=20)
    clean, dim = make_env(cfg, 0), make_env(cfg, 0, parse_condition("gain=0.5"))
    assert np.array_equal(dim.reset()["image"], gain(clean.reset()["image"], 0.5, None, None))
    clean.close(), dim.close()

    assert "gain" in rows()
    assert family_order(["noise", "clean", "gain"]) == ["gain", "noise"]
    summary = pd.DataFrame({"task": "walker_walk", "variant": "baseline", "family": ["clean", "gain"],
                            "level": [0.0, 0.5], "mean": 1.0, "ci_low": 0.0, "ci_high": 2.0, "n_diverged": 0})
    fig = plot_robustness(summary, Spec("fig", "", ["baseline"], ["walker_walk"], "smoke", families=["gain"]))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "perturbation level (brightness gain)"
    assert sorted(ax.lines[0].get_xdata()) == [0.5, 1.0]  # the clean return at the neutral level


def test_the_schema_lists_every_source():
    notebook = SCHEMA["properties"]["notebooks"]["additionalProperties"]["properties"]
    assert notebook["sources"]["items"]["enum"] == results.sources()


def test_a_table_kind_added_to_the_registry_is_planned_cached_and_aggregated(monkeypatch, tmp_path):
    kind = results.ResultKind("reward", "evaluate", "eval/{run}/{sid}.reward.parquet")
    monkeypatch.setitem(results.RESULT_KINDS, "reward", kind)
    assert "reward" in results.sources()

    exp = Experiment(merge(CONFIG, {"notebooks": {"robustness": {"sources": ["reward"]}}}))
    artifact = next(a for a in exp.artifact_ids if exp.artifact(a)["notebook"] == "robustness")
    runs = exp.artifact_runs(artifact)
    assert exp.stage_runs("evaluate", [artifact]) == set(runs)
    assert job_counts(exp, [artifact])["evaluate"] == len(runs)
    run = runs[0]
    path = exp.result_file("reward", run)
    assert path == f"eval/{run.path}/{exp.stage_ids['evaluate']}.reward.parquet"
    assert path in run_files(exp, run, {"reward"})

    inputs = []
    for k, r in enumerate(runs[:2]):
        inputs.append(tmp_path / f"{k}.parquet")
        write_table(pd.DataFrame({"seed": [r.seed], "reward": [float(k)]}), inputs[-1], config_hash=r.rid)
    grid = [{"task": r.task, "variant": r.variant, "seed": r.seed, "rid": r.rid} for r in runs[:2]]
    table = aggregate("reward", inputs, grid, tmp_path / "out.parquet", "smoke")
    assert table["reward"].tolist() == [0.0, 1.0]
