"""dm_control envs: spaces, action repeat, episode length, seeding, rendering, BatchEnv."""

import functools
import subprocess
import sys

import numpy as np
import pytest

from wmrobust.envs import BatchEnv, EnvConfig, EnvWorkerError, make_env
from wmrobust.perturb import parse_condition

SMALL = EnvConfig(task="walker_walk", image_size=16, episode_frames=20)


def _actions(act_dim, steps, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (steps, act_dim)).astype(np.float32)


def _images(cfg, seed, steps=5):
    env = make_env(cfg, seed)
    images = [env.reset()["image"]] + [env.step(a)[0]["image"] for a in _actions(env.act_dim, steps)]
    env.close()
    return np.stack(images)


def test_config_import_does_not_load_dm_control():
    code = "import sys, wmrobust.config, wmrobust.envs, wmrobust.perturb; print('dm_control' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_pixel_and_vector_spaces():
    env = make_env(EnvConfig(task="cheetah_run", image_size=16), 0)
    assert env.obs_space == {"image": ((16, 16, 3), np.uint8)} and env.act_dim == 6
    obs = env.reset()
    assert set(obs) == {"image"} and obs["image"].shape == (16, 16, 3) and obs["image"].dtype == np.uint8
    env.close()
    env = make_env(EnvConfig(task="walker_walk", obs="vector"), 0)
    obs = env.reset()
    # walker: orientations (14) + height (1) + velocity (9), flattened in sorted key order
    assert env.obs_space == {"vector": ((24,), np.float32)} and obs["vector"].shape == (24,)
    assert obs["vector"].dtype == np.float32
    env.close()


def test_vector_is_sorted_flattened_observation():
    env = make_env(EnvConfig(task="cartpole_swingup", obs="vector"), 3)
    obs = env.reset()["vector"]
    time_step_obs = env._env.task.get_observation(env._env.physics)
    expected = np.concatenate([np.ravel(time_step_obs[k]) for k in sorted(time_step_obs)]).astype(np.float32)
    assert np.array_equal(obs, expected)
    env.close()


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match=r"'walker_fly'.*quadruped_walk.*walker_walk"):
        make_env(EnvConfig(task="walker_fly"), 0)


def test_dreamer_camera_per_domain():
    quadruped = make_env(EnvConfig(task="quadruped_walk", image_size=16), 0)
    walker = make_env(SMALL, 0)
    assert quadruped.camera == 2 and walker.camera == 0
    quadruped.close(), walker.close()
    with pytest.raises(ValueError, match="env.camera: 7"):
        make_env(EnvConfig(task="walker_walk", camera=7), 0)


def test_action_repeat_sums_rewards_and_episode_length():
    repeat2 = make_env(EnvConfig(task="walker_walk", obs="vector", action_repeat=2, episode_frames=20), 0)
    repeat1 = make_env(EnvConfig(task="walker_walk", obs="vector", action_repeat=1, episode_frames=20), 0)
    repeat2.reset(), repeat1.reset()
    steps = 0
    for action in _actions(repeat2.act_dim, 10):
        obs, reward, done = repeat2.step(action)
        steps += 1
        (_, r1, _), (obs1, r2, _) = repeat1.step(action), repeat1.step(action)
        assert np.isclose(reward, r1 + r2) and np.array_equal(obs["vector"], obs1["vector"])
        assert done == (steps == 10)
    with pytest.raises(RuntimeError, match="reset"):
        repeat2.step(np.zeros(repeat2.act_dim))
    repeat2.reset()  # a new episode of the same length
    assert sum(repeat2.step(a)[2] for a in _actions(repeat2.act_dim, 10)) == 1
    repeat1.close(), repeat2.close()


def test_bad_action_shape():
    env = make_env(SMALL, 0)
    env.reset()
    with pytest.raises(ValueError, match=r"action shape \(3,\)"):
        env.step(np.zeros(3))
    env.close()


def test_same_seed_same_episode_different_seed_differs():
    a = _images(SMALL, 0)
    assert np.array_equal(a, _images(SMALL, 0))
    assert not np.array_equal(a, _images(SMALL, 1))


def test_fast_render_differs_but_keeps_shape():
    standard = _images(SMALL, 0, steps=1)
    fast = _images(EnvConfig(task="walker_walk", image_size=16, render="fast"), 0, steps=1)
    assert fast.shape == standard.shape and not np.array_equal(fast, standard)


def test_standard_render_equals_dm_control_render():
    env = make_env(EnvConfig(task="walker_walk", image_size=32), 0)
    image = env.reset()["image"]
    assert np.array_equal(image, env.physics.render(32, 32, camera_id=0))
    env.physics.free()  # dm_control's own GL context, made by the call above
    env.close()


@pytest.mark.parametrize("render", ["standard", "fast"])
def test_an_env_renders_as_a_renderer_of_its_own_would(render):
    """Envs share one GL context per task (Camera); a later env, with scaled dynamics, still
    renders exactly what a fresh mujoco.Renderer of its own physics renders."""
    import mujoco

    cfg = EnvConfig(task="walker_walk", image_size=24, render=render)
    make_env(cfg, 0).reset()  # the camera is made from this env's model
    env = make_env(cfg, 1, parse_condition("mass=1.5"))
    frames = [env.reset()["image"]] + [env.step(a)[0]["image"] for a in _actions(env.act_dim, 3)]
    with mujoco.Renderer(env.physics.model.ptr, 24, 24) as own:
        if render == "fast":
            own.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            own.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        own.update_scene(env.physics.data.ptr, camera=env.camera)
        assert np.array_equal(frames[-1], own.render())
    env.close()


def test_batch_env_processes_match_in_process():
    fns = [functools.partial(make_env, SMALL, seed, parse_condition("noise=0.1")) for seed in (0, 1, 2)]
    actions = _actions(6, 3)
    results = {}
    for processes in (1, 2):
        with BatchEnv(fns, processes) as batch:
            assert batch.obs_space == {"image": ((16, 16, 3), np.uint8)} and batch.act_dim == 6
            trace = [np.stack([o["image"] for o in batch.reset()])]
            for action in actions:
                out = batch.step([action] * 3)
                trace.append(np.stack([o["image"] for o, _, _ in out]))
                trace.append(np.array([r for _, r, _ in out]))
        results[processes] = trace
    for a, b in zip(results[1], results[2]):
        assert np.array_equal(a, b)
    assert not np.array_equal(results[1][0][0], results[1][0][1])  # seeds differ


def test_batch_env_reraises_worker_errors_with_traceback():
    batch = BatchEnv([functools.partial(make_env, SMALL, seed) for seed in (0, 1)], processes=2)
    batch.reset()
    with pytest.raises(EnvWorkerError, match=r"(?s)worker 0 raised.*Traceback.*action shape \(2,\)"):
        batch.step([np.zeros(2), np.zeros(2)])
    batch.close()  # already closed by the error; closing twice is fine


def test_batch_env_reraises_worker_construction_errors():
    bad = EnvConfig()
    object.__setattr__(bad, "task", "walker_fly")  # past EnvConfig's own check: make_env refuses it too
    fns = [functools.partial(make_env, bad, seed) for seed in (0, 1)]
    with pytest.raises(EnvWorkerError, match=r"(?s)Traceback.*unknown dm_control task 'walker_fly'"):
        BatchEnv(fns, processes=2)


def test_batch_env_refuses_unpicklable_constructors():
    with pytest.raises(TypeError, match="functools.partial"):
        BatchEnv([lambda: make_env(SMALL, 0)] * 2, processes=2)
