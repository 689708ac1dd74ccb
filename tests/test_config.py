"""Run configs: defaults, overlays, hashing, and errors that name the key."""

import math

import pytest

from wmrobust.config import ConfigError, RunConfig, build, config_hash, load_yaml, resolve, save_yaml


def test_overrides_reach_the_nested_field_and_change_the_hash():
    base = resolve({})
    changed = resolve({"agent": {"jacobian": {"weight": 0.01}}})
    assert changed.agent.jacobian.weight == 0.01
    assert base.hash() != changed.hash()
    assert resolve({}).hash() == base.hash()


def test_yaml_roundtrip_keeps_the_hash(tmp_path):
    cfg = resolve({"agent": {"latent_error": {"kind": "nonzero_drift"}}, "seed": 3})
    save_yaml(cfg, tmp_path / "config.yaml")
    assert load_yaml(tmp_path / "config.yaml") == cfg
    assert config_hash(load_yaml(tmp_path / "config.yaml")) == cfg.hash()


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        ({"agent": {"latent_eror": {}}}, "agent.latent_eror"),
        ({"agent": {"latent_error": {"kind": "sideways"}}}, "agent.latent_error.kind"),
        ({"agent": {"latent_error": {"sigma2": "big"}}}, "agent.latent_error.sigma2"),
        ({"train": {"frames": 1.5}}, "train.frames"),
        ({"env": {"obs": "smell"}}, "env.obs"),
        ({"env": {"task": "walker"}}, "env.task"),
        ({"seed": "zero"}, "seed"),
    ],
)
def test_bad_values_name_their_key(overrides, culprit):
    with pytest.raises(ConfigError, match=culprit.replace(".", r"\.")):
        resolve(overrides)


def test_identity_columns():
    cfg = resolve({"agent": {"latent_error": {"kind": "zero_drift", "sigma2": 5.0}}, "seed": 2})
    ident = cfg.id_columns("zd5")
    assert ident["variant"] == "zd5" and ident["sigma2"] == 5.0 and ident["seed"] == 2
    assert math.isnan(resolve({}).id_columns("baseline")["sigma2"])


def test_load_yaml_names_the_file(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("agent: {nope: 1}\n")
    with pytest.raises(ConfigError, match="config.yaml"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_yaml(tmp_path / "missing.yaml")
    assert isinstance(build(RunConfig, {}), RunConfig)
