"""Perturbation specs: short strings like ``noise=0.1`` or ``mask=0.25,mass=1.5``.

Parsing is pure Python (no numpy, no dm_control), so the workflow can validate
specs and name result columns without loading any simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wmrobust.errors import UserError


class SpecError(UserError):
    """A perturbation spec that cannot be parsed or is out of range."""


@dataclass(frozen=True)
class Family:
    """One perturbation family: what it acts on and its valid levels."""

    kind: str
    """observation, dynamics or latent."""
    meaning: str
    """What the level means, for error messages and figure labels."""
    low: float
    high: float
    low_closed: bool
    high_closed: bool

    def contains(self, level: float) -> bool:
        above = level >= self.low if self.low_closed else level > self.low
        below = level <= self.high if self.high_closed else level < self.high
        return above and below

    @property
    def range_text(self) -> str:
        left = "[" if self.low_closed else "("
        right = "]" if self.high_closed else ")"
        return f"{left}{_number(self.low)}, {_number(self.high)}{right}"


# Dict order is the canonical order of families in labels.
FAMILIES: dict[str, Family] = {
    "noise": Family("observation", "gaussian noise std (pixels on [0,1]; vectors: fraction of each dimension's spread)", 0.0, 1.0, True, True),
    "rotation": Family("observation", "image rotation in degrees, counter-clockwise", -180.0, 180.0, True, True),
    "mask": Family("observation", "fraction of the image occluded by a black block", 0.0, 1.0, True, False),
    "mass": Family("dynamics", "scale of all body masses (and inertias)", 0.0, 10.0, False, True),
    "friction": Family("dynamics", "scale of all friction coefficients", 0.0, 10.0, False, True),
    "gravity": Family("dynamics", "scale of gravity", 0.0, 10.0, False, True),
    "latent": Family("latent", "test-time zero-drift latent error variance sigma2", 0.0, math.inf, True, False),
}

# Observation families that act on images only (noise also perturbs vector observations).
IMAGE_ONLY = ("rotation", "mask")

# docs/protocol.md section 5: the levels every run is evaluated at.
LEVELS: dict[str, tuple[float, ...]] = {
    "noise": (0.05, 0.1, 0.2, 0.3),
    "rotation": (5.0, 10.0, 20.0, 30.0),
    "mask": (0.1, 0.25, 0.5),
    "mass": (0.5, 0.75, 1.25, 1.5),
    "friction": (0.5, 0.75, 1.25, 1.5),
    "latent": (0.1, 1.0, 5.0),
}


def _number(x: float) -> str:
    """Shortest round-tripping text of a float, without a trailing '.0' (20.0 -> '20')."""
    text = repr(float(x) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


def _valid_text() -> str:
    families = ", ".join(f"{name} in {f.range_text}" for name, f in FAMILIES.items())
    return f"valid: 'clean' or comma-separated family=level with {families}"


@dataclass(frozen=True)
class Perturbation:
    """One family at one level, e.g. Perturbation('noise', 0.1)."""

    family: str
    level: float

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise SpecError(f"unknown perturbation family {self.family!r}; {_valid_text()}")
        level = float(self.level) + 0.0  # + 0.0 turns -0.0 into 0.0
        family = FAMILIES[self.family]
        if not family.contains(level):  # also refuses nan and inf
            raise SpecError(
                f"{self.family}={_number(level)} is out of range: {self.family} "
                f"({family.meaning}) must be in {family.range_text}; {_valid_text()}"
            )
        object.__setattr__(self, "level", level)

    @property
    def kind(self) -> str:
        return FAMILIES[self.family].kind

    @property
    def label(self) -> str:
        return f"{self.family}={_number(self.level)}"


@dataclass(frozen=True)
class Condition:
    """A set of perturbations applied together; the empty set is the clean condition.

    Perturbations are kept in the canonical family order, so ``mask=0.25,noise=0.1``
    and ``noise=0.1,mask=0.25`` are the same condition with the same label.
    """

    perturbations: tuple[Perturbation, ...] = ()

    def __post_init__(self):
        order = list(FAMILIES)
        ordered = tuple(sorted(self.perturbations, key=lambda p: order.index(p.family)))
        families = [p.family for p in ordered]
        if len(set(families)) != len(families):
            raise SpecError(f"condition {self._join(ordered)!r} repeats a family; {_valid_text()}")
        object.__setattr__(self, "perturbations", ordered)

    @staticmethod
    def _join(perturbations) -> str:
        return ",".join(p.label for p in perturbations) or "clean"

    @property
    def label(self) -> str:
        """Canonical spec: 'clean' or e.g. 'noise=0.1' / 'noise=0.1,mask=0.25'."""
        return self._join(self.perturbations)

    @property
    def family(self) -> str:
        """'clean', the family of a single perturbation, or 'noise+mask' for compositions."""
        return "+".join(p.family for p in self.perturbations) or "clean"

    @property
    def level(self) -> float:
        """0.0 for clean, the level of a single perturbation, NaN for compositions."""
        if not self.perturbations:
            return 0.0
        return self.perturbations[0].level if len(self.perturbations) == 1 else math.nan

    @property
    def latent_sigma2(self) -> float:
        """Test-time zero-drift latent error variance (0.0 if none); applied by the evaluator."""
        return next((p.level for p in self.perturbations if p.family == "latent"), 0.0)

    @property
    def observation(self) -> tuple[Perturbation, ...]:
        return tuple(p for p in self.perturbations if p.kind == "observation")

    @property
    def dynamics(self) -> tuple[Perturbation, ...]:
        return tuple(p for p in self.perturbations if p.kind == "dynamics")

    def __str__(self) -> str:
        return self.label


CLEAN = Condition()


def parse_condition(spec: str | Condition) -> Condition:
    """Parse 'clean', 'noise=0.1' or a comma-separated composition like 'noise=0.1,mask=0.25'.

    Raises SpecError (a ValueError) naming the spec and listing valid families and ranges.
    """
    if isinstance(spec, Condition):
        return spec
    text = str(spec).strip()
    if text == "clean":
        return CLEAN
    perturbations = []
    for part in text.split(","):
        family, sep, level = (s.strip() for s in part.partition("="))
        if not sep or not family or not level:
            raise SpecError(f"malformed perturbation spec {spec!r} (part {part.strip()!r}); {_valid_text()}")
        try:
            value = float(level)
        except ValueError:
            raise SpecError(
                f"malformed perturbation spec {spec!r}: level {level!r} of {family!r} is not a number; "
                f"{_valid_text()}"
            ) from None
        try:
            perturbations.append(Perturbation(family, value))
        except SpecError as error:
            raise SpecError(f"bad perturbation spec {spec!r}: {error}") from None
    try:
        return Condition(tuple(perturbations))
    except SpecError as error:
        raise SpecError(f"bad perturbation spec {spec!r}: {error}") from None
