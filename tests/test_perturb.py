"""Perturbations checked against independent computations, spec parsing, dynamics scaling."""

import math

import numpy as np
import pytest
import scipy.ndimage

from wmrobust.envs import EnvConfig, make_env
from wmrobust.perturb import CLEAN, FAMILIES, Condition, Perturbation, SpecError, parse_condition
from wmrobust.envs import vector_spread
from wmrobust.perturb.observation import add_image_noise, add_vector_noise, occlude_image, rotate_image

# --- spec parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, label, family, level",
    [
        ("clean", "clean", "clean", 0.0),
        ("noise=0.10", "noise=0.1", "noise", 0.1),
        (" rotation = 20.0 ", "rotation=20", "rotation", 20.0),
        ("rotation=-0", "rotation=0", "rotation", 0.0),
        ("mask=0.25", "mask=0.25", "mask", 0.25),
        ("mass=1.5", "mass=1.5", "mass", 1.5),
        ("friction=0.75", "friction=0.75", "friction", 0.75),
        ("gravity=0.5", "gravity=0.5", "gravity", 0.5),
        ("latent=5", "latent=5", "latent", 5.0),
    ],
)
def test_parse_single(spec, label, family, level):
    condition = parse_condition(spec)
    assert (condition.label, condition.family, condition.level) == (label, family, level)
    assert parse_condition(condition.label) == condition


def test_parse_composition_is_order_free():
    a = parse_condition("mask=0.25,noise=0.1,latent=1")
    b = parse_condition("latent=1, noise=0.1, mask=0.25")
    assert a == b and a.label == "noise=0.1,mask=0.25,latent=1"
    assert a.family == "noise+mask+latent" and math.isnan(a.level)
    assert a.latent == (Perturbation("latent", 1),) and [p.family for p in a.observation] == ["noise", "mask"]
    assert parse_condition("clean") is CLEAN and CLEAN.latent == () and CLEAN.label == "clean"
    assert Condition((Perturbation("mass", 2),)).dynamics == (Perturbation("mass", 2.0),)


def test_protocol_levels_parse():
    for family, definition in FAMILIES.items():
        for level in definition.levels:
            assert parse_condition(f"{family}={level}").level == level


@pytest.mark.parametrize(
    "spec",
    ["noise", "noise=abc", "=3", "noise=0.1,noise=0.2", "foo=1", "", "clean,noise=0.1", "noise=0.1,",
     "noise=-0.1", "noise=1.5", "noise=nan", "rotation=181", "mask=1", "mass=0", "friction=11",
     "gravity=-1", "latent=-1", "latent=inf"],
)
def test_bad_specs_name_the_spec_and_list_families(spec):
    with pytest.raises(SpecError) as info:
        parse_condition(spec)
    message = str(info.value)
    assert repr(spec) in message
    assert "noise in [0, 1]" in message and "mask in [0, 1)" in message and "mass in (0, 10]" in message
    assert isinstance(info.value, ValueError)


# --- observation perturbations against independent computations ----------------------


@pytest.mark.parametrize("std", [0.05, 0.1])
def test_noise_std_on_mid_grey(std):
    grey = np.full((256, 256, 3), 128, np.uint8)
    out = add_image_noise(grey, std, np.random.default_rng(0))
    assert out.dtype == np.uint8
    delta = (out.astype(np.float64) - 128) / 255
    # ~200k samples: the std estimate's relative error is ~0.2%; rounding adds 1/255/sqrt(12).
    assert abs(delta.std() - std) < 0.02 * std
    assert abs(delta.mean()) < 0.01 * std


def test_noise_clips_to_pixel_range():
    out = add_image_noise(np.full((64, 64, 3), 250, np.uint8), 1.0, np.random.default_rng(0))
    assert out.max() == 255 and out.min() == 0


def test_vector_noise_std():
    out = add_vector_noise(np.zeros(100_000, np.float32), 0.3, np.random.default_rng(0))
    assert out.dtype == np.float32 and abs(out.std() - 0.3) < 0.01


@pytest.mark.parametrize("size", [64, 37])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.9, 0.999])
def test_mask_fraction(size, fraction):
    white = np.full((size, size, 3), 255, np.uint8)
    rng = np.random.default_rng(1)
    for _ in range(5):
        out = occlude_image(white, fraction, rng)
        black = (out == 0).all(axis=-1)
        assert ((out == 0) | (out == 255)).all() and (black | (out == 255).all(axis=-1)).all()
        assert abs(black.mean() - fraction) <= 0.5 / size**2 + 1e-12


def test_mask_moves_between_frames():
    white = np.full((64, 64, 3), 255, np.uint8)
    rng = np.random.default_rng(2)
    masks = {occlude_image(white, 0.1, rng).tobytes() for _ in range(5)}
    assert len(masks) > 1


def _marker_image(size, row, col):
    image = np.zeros((size, size, 3), np.uint8)
    image[row - 1 : row + 2, col - 1 : col + 2] = 255
    return image


@pytest.mark.parametrize("degrees", [5, 20, 30, -45, 90, 135])
def test_rotation_moves_a_marker_counter_clockwise(degrees):
    size, row, col = 65, 20, 45
    out = rotate_image(_marker_image(size, row, col), degrees).astype(np.float64)[..., 0]
    rows, cols = np.mgrid[0:size, 0:size]
    found = np.array([(out * rows).sum(), (out * cols).sum()]) / out.sum()
    # Counter-clockwise on screen: in (x right, y up) about the centre, (x, y) -> R(theta)(x, y).
    centre, theta = (size - 1) / 2, np.deg2rad(degrees)
    x, y = col - centre, centre - row
    x2, y2 = x * np.cos(theta) - y * np.sin(theta), x * np.sin(theta) + y * np.cos(theta)
    assert np.allclose(found, [centre - y2, centre + x2], atol=0.05)


def test_rotation_matches_references():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (33, 33, 3)).astype(np.uint8)
    assert np.array_equal(rotate_image(image, 90), np.rot90(image))
    assert np.array_equal(rotate_image(image, 0), image)
    rows, cols = np.mgrid[0:64, 0:64]
    smooth = np.stack([np.sin(cols / 5) * np.cos(rows / 7) * 100 + 128] * 3, -1).astype(np.uint8)
    inner = (rows - 31.5) ** 2 + (cols - 31.5) ** 2 < 28**2  # away from the edge handling
    for degrees in (10, -30):
        ours = rotate_image(smooth, degrees).astype(int)
        reference = scipy.ndimage.rotate(smooth, degrees, reshape=False, order=1).astype(int)
        assert np.abs(ours - reference)[inner].max() <= 1


# --- perturbations through make_env ---------------------------------------------------

PIXELS = EnvConfig(task="walker_walk", image_size=16, episode_frames=20)
VECTOR = EnvConfig(task="walker_walk", obs="vector", episode_frames=40)


def _rollout(cfg, seed, spec="clean", steps=5):
    env = make_env(cfg, seed, parse_condition(spec))
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, env.act_dim)).astype(np.float32)
    observations = [next(iter(env.reset().values()))]
    observations += [next(iter(env.step(a)[0].values())) for a in actions]
    env.close()
    return np.stack(observations)


def test_observation_perturbations_are_deterministic_under_env_seed():
    a = _rollout(PIXELS, 0, "noise=0.1,mask=0.25")
    assert np.array_equal(a, _rollout(PIXELS, 0, "noise=0.1,mask=0.25"))
    assert not np.array_equal(a, _rollout(PIXELS, 0))
    assert not np.array_equal(a, _rollout(PIXELS, 1, "noise=0.1,mask=0.25"))
    clean = _rollout(VECTOR, 0)
    assert np.array_equal(clean, _rollout(VECTOR, 0, "clean"))
    assert np.array_equal(clean, _rollout(VECTOR, 0, "latent=5"))  # the env ignores latent


def test_vector_noise_through_env_and_image_only_families_refused():
    clean, noisy = _rollout(VECTOR, 0), _rollout(VECTOR, 0, "noise=0.2")
    # Each dimension's noise has 0.2 of that dimension's spread (in its own units).
    relative = (noisy - clean) / vector_spread(VECTOR.task)
    assert noisy.dtype == np.float32 and 0.15 < relative.std() < 0.25
    for spec in ("rotation=10", "mask=0.25"):
        with pytest.raises(ValueError, match=spec.replace(".", r"\.") + ".*vector"):
            make_env(VECTOR, 0, parse_condition(spec))


@pytest.mark.parametrize("spec, field", [("mass=1.5", "body_mass"), ("mass=0.5", "body_inertia"),
                                         ("friction=0.75", "geom_friction"), ("gravity=0.5", "opt.gravity")])
def test_dynamics_scaling_holds_without_compounding(spec, field):
    def value(env):
        model = env.physics.model
        for name in field.split("."):
            model = getattr(model, name)
        return np.array(model)

    clean = make_env(VECTOR, 0)
    original = value(clean)
    clean.close()
    scale = parse_condition(spec).level
    env = make_env(VECTOR, 0, parse_condition(spec))
    for _ in range(3):
        env.reset()
        env.step(np.zeros(env.act_dim))
        assert np.allclose(value(env), original * scale)
    if field == "body_mass":  # derived constants follow (mj_setConst)
        assert np.isclose(env.physics.model.body_subtreemass[0], original.sum() * scale)
    env.close()


def test_vector_spread_is_each_dimensions_scale_and_fixed():
    spread = vector_spread("walker_walk")
    assert spread.shape == (24,) and spread.dtype == np.float32 and (spread > 0).all()
    vector_spread.cache_clear()
    assert np.array_equal(spread, vector_spread("walker_walk"))  # recomputed: the same
    assert spread.max() / spread.min() > 10  # units differ across dimensions: why it is needed


def test_dynamics_change_the_trajectory():
    clean = _rollout(VECTOR, 0, steps=15)
    for spec in ("mass=1.5", "friction=0.5", "gravity=0.5"):
        perturbed = _rollout(VECTOR, 0, spec, steps=15)
        assert np.array_equal(perturbed[0], clean[0])  # same initial state
        assert not np.allclose(perturbed[-1], clean[-1])
