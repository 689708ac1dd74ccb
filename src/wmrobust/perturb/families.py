"""The perturbation families: one entry each, which everything else reads.

Adding a family is one entry here, its implementation, its levels in
config/config.yaml and its row in docs/protocol.md section 5. Pure Python: the
implementation is named by "module:function" and imported on first use, so the
workflow can read the registry without loading numpy or a simulator.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Family:
    """One perturbation family: what it acts on, its valid and default levels, how figures
    show it and the function that applies it."""

    name: str
    kind: str
    """observation, dynamics or latent: what ``implementation`` acts on."""
    meaning: str
    """What the level means, for error messages."""
    unit: str
    """The label of the level axis of figures."""
    low: float
    high: float
    low_closed: bool
    high_closed: bool
    implementation: str
    """"module:function". observation: ``f(observation, level, rng, spread) -> observation``, where
    spread is None for an image and each dimension's unit for a vector; dynamics: ``f(model) ->
    arrays``, the model arrays the level scales (written in place); latent: ``f(level) ->
    LatentErrorConfig``, the agent's test-time latent error."""
    levels: tuple[float, ...] = ()
    """docs/protocol.md section 5: the levels every run is evaluated at by default."""
    neutral: float = 0.0
    """The level that changes nothing: where figures put the clean condition on the axis."""
    images_only: bool = False
    """An observation family that has no meaning for vector observations."""
    apply_order: int = 0
    """Observation families act on an observation in increasing apply_order."""

    def contains(self, level: float) -> bool:
        above = level >= self.low if self.low_closed else level > self.low
        below = level <= self.high if self.high_closed else level < self.high
        return above and below

    @property
    def range_text(self) -> str:
        left = "[" if self.low_closed else "("
        right = "]" if self.high_closed else ")"
        return f"{left}{number_text(self.low)}, {number_text(self.high)}{right}"

    @property
    def apply(self) -> Callable:
        module, _, function = self.implementation.partition(":")
        return getattr(importlib.import_module(module), function)


def number_text(x: float) -> str:
    """Shortest round-tripping text of a float, without a trailing '.0' (20.0 -> '20')."""
    text = repr(float(x) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


_OBSERVATION = "wmrobust.perturb.observation"
_DYNAMICS = "wmrobust.perturb.dynamics"

# Dict order is the canonical order of families: in condition labels and in figures.
# Images are perturbed as a camera would see them: the scene turns, an occluder covers
# part of it, then the sensor adds noise (apply_order).
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("noise", "observation", "gaussian noise std (pixels on [0,1]; vectors: fraction of each dimension's spread)",
           "pixel noise std", 0.0, 1.0, True, True, f"{_OBSERVATION}:noise",
           levels=(0.05, 0.1, 0.2, 0.3), apply_order=2),
    Family("rotation", "observation", "image rotation in degrees, counter-clockwise",
           "degrees", -180.0, 180.0, True, True, f"{_OBSERVATION}:rotation",
           levels=(5.0, 10.0, 20.0, 30.0), images_only=True, apply_order=0),
    Family("mask", "observation", "fraction of the image occluded by a black block",
           "fraction occluded", 0.0, 1.0, True, False, f"{_OBSERVATION}:mask",
           levels=(0.1, 0.25, 0.5), images_only=True, apply_order=1),
    Family("mass", "dynamics", "scale of all body masses (and inertias)",
           "mass scale", 0.0, 10.0, False, True, f"{_DYNAMICS}:mass",
           levels=(0.5, 0.75, 1.25, 1.5), neutral=1.0),
    Family("friction", "dynamics", "scale of all friction coefficients",
           "friction scale", 0.0, 10.0, False, True, f"{_DYNAMICS}:friction",
           levels=(0.5, 0.75, 1.25, 1.5), neutral=1.0),
    Family("gravity", "dynamics", "scale of gravity",
           "gravity scale", 0.0, 10.0, False, True, f"{_DYNAMICS}:gravity", neutral=1.0),
    Family("latent", "latent", "test-time zero-drift latent error variance sigma2",
           r"latent error $\sigma^2$", 0.0, math.inf, True, False, "wmrobust.episodes:zero_drift_error",
           levels=(0.1, 1.0, 5.0)),
)}


def family_rank(name: str) -> tuple[int, str]:
    """Sort key of family names in the canonical order; names outside the registry (such as
    'noise+mask', a composition) after every family, by name."""
    order = list(FAMILIES)
    return (order.index(name) if name in order else len(order), name)
