"""Observation perturbations on single observations: uint8 HWC images or float32 vectors.

`noise`, `rotation` and `mask` are the implementations the family registry
(``wmrobust.perturb.families``) names; `perturb_observation` applies a condition's
observation perturbations in their families' apply_order, whatever the order of the spec.
"""

from __future__ import annotations

import functools

import numpy as np

from wmrobust.perturb.families import FAMILIES
from wmrobust.perturb.spec import Perturbation, SpecError


def add_image_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with `std` on [0,1] pixels, clipped to [0,1], rounded back to uint8."""
    pixels = image.astype(np.float32) / 255.0
    pixels += std * rng.standard_normal(image.shape, dtype=np.float32)
    return np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


def add_vector_noise(vector: np.ndarray, std: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with `std` (one value, or one per dimension) in the vector's own units."""
    return (vector + std * rng.standard_normal(vector.shape, dtype=np.float32)).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _rotation_map(height: int, width: int, degrees: float):
    """Source pixel indices and bilinear weights of an image rotated about its centre.

    Output pixel p shows the input at R(-degrees) p (inverse mapping), in coordinates
    with y pointing up so positive degrees turn the picture counter-clockwise on screen.
    Indices address the input padded by one black pixel on every side.
    """
    theta = np.deg2rad(degrees)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    x, y = cols - cx, cy - rows
    xs = np.cos(theta) * x + np.sin(theta) * y
    ys = -np.sin(theta) * x + np.cos(theta) * y
    # +1 for the padding; clipping to the padded border makes far-away samples black.
    src_r = np.clip(cy - ys + 1.0, 0.0, height + 1.0)
    src_c = np.clip(xs + cx + 1.0, 0.0, width + 1.0)
    r0 = np.minimum(np.floor(src_r).astype(np.intp), height)
    c0 = np.minimum(np.floor(src_c).astype(np.intp), width)
    fr, fc = (src_r - r0)[..., None], (src_c - c0)[..., None]
    weights = ((1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc)
    corners = ((r0, c0), (r0, c0 + 1), (r0 + 1, c0), (r0 + 1, c0 + 1))
    return corners, tuple(w.astype(np.float32) for w in weights)


def rotate_image(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate an HWC uint8 image by `degrees` counter-clockwise about its centre.

    Bilinear sampling; the corners that rotate in from outside the frame are black.
    """
    height, width = image.shape[:2]
    corners, weights = _rotation_map(height, width, float(degrees))
    padded = np.pad(image.astype(np.float32), ((1, 1), (1, 1), (0, 0)))
    out = sum(w * padded[r, c] for (r, c), w in zip(corners, weights))
    return np.rint(out).clip(0, 255).astype(np.uint8)


def mask_block(height: int, width: int, fraction: float) -> tuple[int, int, int]:
    """Shape of the occluding block: (rows, full columns, pixels in a last partial column).

    The block covers exactly round(fraction * height * width) pixels: `rows` is the
    smallest square side holding them, filled column by column, so the block is a
    square (or nearly one) whose pixel count matches the level to within one pixel.
    """
    count = int(round(fraction * height * width))
    if count == 0:
        return 0, 0, 0
    rows = min(int(np.ceil(np.sqrt(count))), height)
    full, rest = divmod(count, rows)
    if full + (rest > 0) > width:
        raise ValueError(f"mask={fraction} does not fit a {height}x{width} image")
    return rows, full, rest


def occlude_image(image: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Black out a block of `fraction` of the pixels at a uniformly random position (see mask_block)."""
    height, width = image.shape[:2]
    rows, full, rest = mask_block(height, width, fraction)
    if rows == 0:
        return image.copy()
    top = int(rng.integers(0, height - rows + 1))
    left = int(rng.integers(0, width - full - (rest > 0) + 1))
    out = image.copy()
    out[top : top + rows, left : left + full] = 0
    if rest:
        out[top : top + rest, left + full] = 0
    return out


def noise(observation: np.ndarray, std: float, rng: np.random.Generator, spread: np.ndarray | None) -> np.ndarray:
    """Gaussian noise: `std` on [0,1] pixels, or `std` times each dimension's spread on a vector."""
    if spread is None:
        return add_image_noise(observation, std, rng)
    return add_vector_noise(observation, std * spread, rng)


def rotation(image: np.ndarray, degrees: float, rng: np.random.Generator, spread: None) -> np.ndarray:
    return rotate_image(image, degrees)


def mask(image: np.ndarray, fraction: float, rng: np.random.Generator, spread: None) -> np.ndarray:
    return occlude_image(image, fraction, rng)


def check_observation_perturbations(perturbations, obs_key: str) -> None:
    """Refuse image-only perturbations on vector observations."""
    for p in perturbations:
        if p.kind != "observation":
            raise SpecError(f"{p.label} is a {p.kind} perturbation, not an observation perturbation")
        if obs_key == "vector" and p.definition.images_only:
            vector = [f.name for f in FAMILIES.values() if f.kind == "observation" and not f.images_only]
            raise SpecError(
                f"{p.label} perturbs images, but this env observes vectors (env.obs='vector'); "
                f"only {', '.join(vector)} applies to vector observations"
            )


def perturb_observation(
    obs: dict[str, np.ndarray],
    perturbations: tuple[Perturbation, ...],
    rng: np.random.Generator,
    spread: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Apply observation perturbations to an observation dict ('image' or 'vector').

    Vector perturbations are in units of `spread`, each dimension's own scale
    (``envs.vector_spread``): noise level 0.1 adds noise with a tenth of that dimension's
    spread, whatever its physical unit.
    """
    key = "vector" if "vector" in obs else "image"
    check_observation_perturbations(perturbations, key)
    if key == "vector" and perturbations and spread is None:
        raise ValueError("vector perturbations need the spread of each dimension (envs.vector_spread)")
    value = obs[key]
    for p in sorted(perturbations, key=lambda p: p.definition.apply_order):
        value = p.definition.apply(value, p.level, rng, spread if key == "vector" else None)
    return {**obs, key: value}
