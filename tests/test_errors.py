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
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


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
     r"^task_overrides\.walker_walk\.env\.task: 'walker_wlak' is not the entry's name 'walker_walk'"),
])
def test_bad_conditions_and_tasks_refused_at_dag_build(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        experiment(**overrides)
    assert "\n" not in str(info.value)


def test_good_conditions_pass():
    exp = experiment(perturbations={"mask": [0.0, 0.99], "latent": [100]})
    assert "clean" in exp.condition_labels


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


# ---- 5: user errors without tracebacks, and without files that block the rerun -------------


@pytest.mark.parametrize("setting, message", [
    ("env.task=foo", "env.task: unknown dm_control task 'foo'"),
    ("env.task=walker_fly", "env.task: unknown dm_control task 'walker_fly'"),
    ("env.camera=7", "env.camera: 7 is not a camera of walker_walk"),
    ("train.batch_length=600", "train.batch_length: 600 is longer than an episode"),
])
def test_train_refuses_bad_env_before_writing_anything(tmp_path, capsys, setting, message):
    from wmrobust.cli import main

    run_dir = tmp_path / "D"
    assert main(["train", "--run-dir", str(run_dir), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not run_dir.exists()


def test_corrupt_replay_episode_names_the_file_and_the_fix(tmp_path, capsys, monkeypatch):
    import wmrobust.train as train_module
    from test_train import FakeEnv, tiny

    from wmrobust.checkpoint import CheckpointError
    from wmrobust.cli import main
    from wmrobust.train import train

    with pytest.raises(SystemExit):
        train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv, _stop_after_frames=100)
    episode = sorted((tmp_path / "checkpoint" / "replay").glob("*.npz"))[0]
    episode.write_bytes(episode.read_bytes()[:50])  # truncated
    with pytest.raises(CheckpointError, match=rf"{episode.name}: cannot read replay episode.*delete "
                                              rf".*checkpoint to restart the run"):
        train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv)
    monkeypatch.setattr(train_module, "train", lambda cfg, run_dir: train(
        cfg, run_dir, progress=False, _env_fn=FakeEnv))
    cfg = tiny().to_dict()
    sets = [f"{k}={v}" for k, v in {"env.task": cfg["env"]["task"], "env.obs": "vector", "env.episode_frames": 40,
                                    "agent.size": "tiny", "train.frames": 200, "train.prefill_frames": 40,
                                    "train.train_ratio": 32, "train.pretrain": 10, "train.eval_every_frames": 100,
                                    "train.checkpoint_every_seconds": 0}.items()]
    argv = ["--run-dir", str(tmp_path)] + [x for s in sets for x in ("--set", s)] + ["--device", "cpu"]
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert episode.name in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_corrupt_status_json_is_named(tmp_path):
    from wmrobust import rundir
    from wmrobust.aggregate import _commits

    status = tmp_path / "status.json"
    status.write_text('{"status": "fini')
    with pytest.raises(ValueError, match=r"status\.json: not a valid JSON object"):
        _commits([status])
    assert rundir.state(tmp_path)["state"] == "corrupt"


def test_evaluate_refuses_an_unknown_output_format_before_running(tmp_path, capsys):
    from wmrobust.cli import main

    # The run directory does not even exist: the output is checked first, before any episode.
    assert main(["evaluate", "--run-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "x.txt"),
                            "--variant", "baseline", "--conditions", "clean"]) == 2
    err = capsys.readouterr().err
    assert "x.txt: unsupported table format '.txt'" in err and "Traceback" not in err
    assert not (tmp_path / "x.txt").exists()


# ---- 6: numbers passed as strings (Snakemake's --config) ---------------------------------


def test_run_config_number_fields_accept_numeric_strings():
    cfg = resolve({"train": {"frames": "2000", "prefill_frames": " 500 ", "train_ratio": "1e2"},
                   "agent": {"jacobian": {"weight": "0.01"}}, "env": {"camera": "1"}, "seed": "3"})
    assert (cfg.train.frames, cfg.train.prefill_frames, cfg.train.train_ratio) == (2000, 500, 100.0)
    assert cfg.agent.jacobian.weight == 0.01 and cfg.env.camera == 1 and cfg.seed == 3
    assert cfg.hash() == resolve({"train": {"frames": 2000, "prefill_frames": 500, "train_ratio": 100.0},
                                  "agent": {"jacobian": {"weight": 0.01}}, "env": {"camera": 1},
                                  "seed": 3}).hash()
    with pytest.raises(ConfigError, match=r"train\.frames: expected an integer, got 2000\.5"):
        resolve({"train": {"frames": "2000.5"}})
    with pytest.raises(ConfigError, match=r"env\.task: expected a string, got 5"):
        resolve({"env": {"task": 5}})


def test_experiment_numbers_as_strings_are_coerced_before_the_schema(tmp_path):
    import jsonschema

    from wmrobust.schema import coerce_numbers

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    config = merge(CONFIG, {"min_seeds": "7", "seeds": ["1"], "scales": {"smoke": {
        "perturbation_levels": {"noise": ["0.2"]}, "seeds": ["0", "1"], "evaluation": {"episodes": "2"},
        "run": {"train": {"frames": "2000"}}}}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)
    assert coerce_numbers(config, ROOT / "workflow" / "schemas" / "config.schema.yaml") is config
    jsonschema.validate(config, schema)
    smoke = config["scales"]["smoke"]
    assert smoke["perturbation_levels"]["noise"] == [0.2] and smoke["seeds"] == [0, 1]
    assert smoke["evaluation"]["episodes"] == 2 and config["min_seeds"] == 7
    assert config["seeds"] == ["1"]  # a string is valid there: left as it is
    assert config["scale"] == "smoke" and smoke["run"]["train"]["frames"] == "2000"  # the run config reads it
    exp = Experiment(config)
    assert exp.run_config("walker_walk", "baseline", 0).train.frames == 2000
    assert "noise=0.2" in exp.condition_labels
    bad = {"min_seeds": "many", "scales": {"s": {"seeds": ["nan"]}}}
    assert coerce_numbers(bad, schema) == {"min_seeds": "many", "scales": {"s": {"seeds": ["nan"]}}}


# ---- 7: smaller ones -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf")])
def test_non_finite_numbers_refused_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"agent\.jacobian\.weight: expected a finite number"):
        resolve({"agent": {"jacobian": {"weight": value}}})


def test_train_refuses_nan_from_the_command_line(tmp_path, capsys):
    from wmrobust.cli import main

    assert main(["train", "--run-dir", str(tmp_path / "D"), "--set", "agent.jacobian.weight=nan"]) == 2
    err = capsys.readouterr().err
    assert "agent.jacobian.weight: expected a finite number" in err and not (tmp_path / "D").exists()


@pytest.mark.parametrize("overrides, message", [
    ({"scael": "smoke"}, r"^scael: unknown config key; valid keys here: scale, tasks, variants, seeds"),
    ({"scales": {"smoke": {"evalution": {}}}}, r"^scales\.smoke\.evalution: unknown config key; valid keys here: "
                                              r"description, tasks"),
    ({"variant_overrides": {"zd5": {"agnet": {}}}}, r"^variant_overrides\.zd5\.agnet: unknown config key; "
                                                    r"valid keys here: env, agent, train$"),
])
def test_unknown_experiment_keys_named_in_one_line(overrides, message):
    from wmrobust.schema import coerce_numbers

    with pytest.raises(ConfigError, match=message):
        coerce_numbers(merge(CONFIG, overrides), ROOT / "workflow" / "schemas" / "config.schema.yaml")


def test_frames_not_beyond_prefill_refused_naming_both_keys():
    for frames, prefill in ((2000, 5000), (400, 400)):
        with pytest.raises(ConfigError, match=rf"train\.frames: {frames} must be more than "
                                              rf"train\.prefill_frames \({prefill}\)"):
            resolve({"train": {"frames": frames, "prefill_frames": prefill}})
    assert resolve({"agent": {"size": "tiny"}, "train": {"frames": 2000, "prefill_frames": 500}}).train.frames == 2000
    readme = (ROOT / "README.md").read_text()
    assert "--set train.frames=2000 --set train.prefill_frames=500" in readme
    for name in CONFIG["scales"]:  # every scale's runs stay valid
        Experiment(merge(CONFIG, {"scale": name})).runs


def test_runs_that_would_train_nothing_refused_naming_the_keys():
    with pytest.raises(ConfigError, match=r"^train\.frames: 600 is less than one episode "
                                          r"\(env\.episode_frames 1000\)"):
        resolve({"train": {"frames": 600, "prefill_frames": 400}})
    with pytest.raises(ConfigError, match=r"^train\.batch_length: 102 is longer than an episode \(env\.episode_frames "
                                          r"200 / env\.action_repeat 2 = 100 steps, plus the first observation: 101\)"):
        resolve({"env": {"episode_frames": 200}, "train": {"batch_length": 102}})
    # The limits themselves train: one episode's frames, sequences of a whole episode.
    resolve({"env": {"episode_frames": 200}, "train": {"frames": 200, "prefill_frames": 100, "batch_length": 101}})
    with pytest.raises(ConfigError, match=r"^run \w+/[\w.+-]+/seed\d+ \(scales\.smoke\.run, .*\): train\.frames: "
                                          r"150 is less than one episode \(env\.episode_frames 200\)"):
        experiment(scales={"smoke": {"run": {"train": {"frames": 150, "prefill_frames": 100}}}}).runs


@pytest.mark.parametrize("overrides, message", [
    ({"notebooks": {"../../../evil": {"sources": ["runs"]}}},
     r"^notebooks: name '\.\./\.\./\.\./evil' does not match \^\[A-Za-z0-9\]\[A-Za-z0-9_\.\+-\]\*\$ "
     r"\(names become paths: a letter or digit, then letters, digits, _ \. \+ -\)$"),
    ({"variant_overrides": {"..": {}}}, r"^variant_overrides: name '\.\.' does not match "),
    ({"scales": {"../x": CONFIG["scales"]["smoke"]}}, r"^scales: name '\.\./x' does not match "),
    ({"selection": "."}, r"^selection: '\.' does not match "),
    ({"tasks": ["walker_walk", "a/b"]}, r"^tasks\[1\]: 'a/b' does not match "),
    ({"artifacts": {"fig-1": CONFIG["artifacts"]["fig1"]}},
     r"^artifacts: name 'fig-1' does not match .* \(artifact ids are also Snakemake rule names"),
    ({"task_overrides": {"../walker_walk": {}}},
     r"^task_overrides: name '\.\./walker_walk' does not match .* \(a dm_control task as <domain>_<task>"),
    ({"min_seeds": 1}, r"^min_seeds: 1 is less than the minimum of 2$"),
])
def test_schema_refuses_names_that_are_not_plain_file_names_on_one_line(overrides, message):
    from wmrobust.schema import check_schema

    with pytest.raises(ConfigError, match=message) as info:
        check_schema(merge(CONFIG, overrides), SCHEMA)
    assert "\n" not in str(info.value)
    check_schema(merge(CONFIG, {"selection": "walker.v2+aug", "variant_overrides": {"zd5-b": {}}}), SCHEMA)


def test_a_path_like_name_fails_the_dry_run_on_one_line(tmp_path):
    from test_workflow import snakemake, workflow_copy

    proc = snakemake("-n", "--cores", "1", "figures", "--config", "selection=..", check=False,
                     cwd=workflow_copy(tmp_path / "work"))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "selection: '..' does not match ^[A-Za-z0-9][A-Za-z0-9_.+-]*$ (names become paths" in out
    assert "Failed validating" not in out


@pytest.mark.parametrize("overrides, message", [
    ({"scales": {"smoke": {"rollout": {"horizon": 57}}}},
     r"^scales\.smoke\.rollout: context 5 \+ horizon 57 = 62 steps is longer than the held-out episodes of \w+: "
     r"scales\.smoke\.heldout\.episode_frames 120 / env\.action_repeat 2 = 60 steps, plus the first observation: 61$"),
    ({"scale": "local", "scales": {"local": {"perturbation_levels": {"mask": [0.25]}}}},
     r"^scales\.local\.perturbation_levels\.mask: mask perturbs images only, but run walker_walk/[\w.+-]+/seed\d+ "
     r"observes vectors \(env\.obs: vector\)$"),
    ({"scale": "paper", "scales": {"paper": {"run": {"env": {"obs": "vector"}}}}},
     r"^perturbations\.rotation: rotation perturbs images only"),
    ({"seeds": [2**64]}, r"^seeds: 18446744073709551616 must be in \[0, 2\*\*64\)"),
    ({"scales": {"smoke": {"seeds": [0, -1]}}}, r"^scales\.smoke\.seeds: -1 must be in \[0, 2\*\*64\)"),
    ({"scales": {"smoke": {"seeds": [0, 0]}}}, r"^scales\.smoke\.seeds: seed 0 is listed twice$"),
    ({"seeds": ["3", 3]}, r"^seeds: seed 3 is listed twice$"),
    ({"artifacts": {"table1": {"families": ["noise", "blur"]}}},
     r"^artifacts\.table1\.families: unknown family 'blur' \(perturbations defines: noise, rotation"),
])
def test_grids_their_jobs_would_refuse_are_refused_at_dag_build(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        experiment(**overrides).runs
    assert "\n" not in str(info.value)


def test_clean_stop_says_stopped_and_resumable(tmp_path):
    from test_train import FakeEnv, tiny

    from wmrobust import rundir
    from wmrobust.train import EXIT_PREEMPTED, train

    with pytest.raises(SystemExit) as info:
        train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv, _stop_after_frames=60)
    assert info.value.code == EXIT_PREEMPTED
    status = rundir.read_status(tmp_path)
    assert status["status"] == "stopped" and status["resumable"] is True
    assert rundir.state(tmp_path)["state"] == "stopped"
    assert train(tiny(), tmp_path, progress=False, _env_fn=FakeEnv) == "finished"
    status = rundir.read_status(tmp_path)
    assert status["status"] == "finished" and status["resumable"] is False


def test_every_table_output_declares_its_provenance():
    """Snakemake deletes the declared outputs of a failed job: a table's provenance
    (wmrobust.io.write_table writes it beside the table) must be one of them."""
    import re

    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        for block in re.findall(r"\n    output:\n(.*?)\n    [a-z]+:", text, re.S):
            for table in re.findall(r"\"([^\"]+\.parquet)\"", block):
                assert f'"{table}.provenance.json"' in block, (path.name, table)


@pytest.mark.parametrize("argv, message", [
    (["train", "--run-dir", "{tmp}/run", "--set", "seed=-1"], "seed: -1 must be in [0, 2**64)"),
    (["preview", "--out", "{tmp}/missing/p.png"], "no such folder"),
    (["preview", "--out", "{tmp}/p.xyz"], "cannot write .xyz; use one of"),
])
def test_cli_refuses_before_working_or_writing(argv, message, tmp_path, capsys):
    from wmrobust.cli import main

    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_an_unknown_rendering_backend_is_one_line(monkeypatch, capsys):
    from wmrobust.cli import main

    monkeypatch.setenv("MUJOCO_GL", "bogus")
    assert main(["preview"]) == 2
    assert "MUJOCO_GL='bogus' is not a rendering backend" in capsys.readouterr().err


def test_status_lists_the_other_runs_beside_a_broken_one(tmp_path, capsys):
    from wmrobust.cli import main

    (tmp_path / "runs" / "walker_walk" / "baseline" / "seed0-aaaaaaaaaaaa" / "status.json").mkdir(parents=True)
    good = tmp_path / "runs" / "walker_walk" / "zd5" / "seed0-bbbbbbbbbbbb"
    good.mkdir(parents=True)
    (good / "status.json").write_text('{"status": "finished", "frames": 10}')
    assert main(["status", str(tmp_path)]) == 0
    assert "1 corrupt, 1 finished" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [
    (b"\xe9\x00\xff garbage", "not a YAML text file"),
    (b"agent:\n  latent_error:\n    mu_range: [0, 1, 2]\n", "agent.latent_error.mu_range: [0.0, 1.0, 2.0] must be [low, high]"),
    (b"agent:\n  latent_error:\n    sigma2: -1\n", "wmrobust train: agent.latent_error.sigma2: -1.0 must be >= 0"),
])
def test_bad_config_files_are_one_line_naming_the_key_once(text, message, tmp_path, capsys):
    from wmrobust.cli import main

    (tmp_path / "c.yaml").write_bytes(text)
    assert main(["train", "--run-dir", str(tmp_path / "run"), "--config", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_plan_checks_the_config_as_the_workflow_does(tmp_path, capsys):
    from wmrobust.cli import main

    bad = tmp_path / "config.yaml"
    bad.write_text((ROOT / "config" / "config.yaml").read_text().replace("min_seeds: 5", "min_seeds: five"))
    assert main(["plan", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "wmrobust plan: min_seeds: 'five' is not of type 'integer'" in err and err.count("\n") == 1


def test_workflow_config_errors_are_one_line_without_snakemakes_stack(tmp_path):
    from test_workflow import snakemake, workflow_copy

    work = workflow_copy(tmp_path / "work")
    proc = snakemake("-n", "--cores", "1", "--config", "min_seeds=five", cwd=work, check=False)
    assert proc.returncode != 0
    assert proc.stderr == "config error: min_seeds: 'five' is not of type 'integer'\n"
    assert "File " not in proc.stdout + proc.stderr
