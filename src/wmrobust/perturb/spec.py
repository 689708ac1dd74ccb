"""Perturbation conditions: short strings like ``noise=0.1`` or ``mask=0.25,mass=1.5``.

A condition is parsed once, where it enters (the experiment config, a command line),
into a `Condition`; everything downstream, env workers included, receives the object.
Its one string form is `Condition.label` (result columns, the evaluate stage id, Snakemake
params), which `parse_condition` reads back. Pure Python (no numpy, no dm_control), so the
workflow can validate conditions without loading any simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from wmrobust.perturb.families import FAMILIES, Family, family_rank, number_text

from wmrobust.errors import UserError


class SpecError(UserError):
    """A perturbation spec that cannot be parsed or is out of range."""


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
                f"{self.family}={number_text(level)} is out of range: {self.family} "
                f"({family.meaning}) must be in {family.range_text}; {_valid_text()}"
            )
        object.__setattr__(self, "level", level)

    @property
    def definition(self) -> Family:
        """The family's registry entry."""
        return FAMILIES[self.family]

    @property
    def kind(self) -> str:
        return self.definition.kind

    @property
    def label(self) -> str:
        return f"{self.family}={number_text(self.level)}"


@dataclass(frozen=True)
class Condition:
    """A set of perturbations applied together; the empty set is the clean condition.

    Perturbations are kept in the canonical family order, so ``mask=0.25,noise=0.1``
    and ``noise=0.1,mask=0.25`` are the same condition with the same label.
    """

    perturbations: tuple[Perturbation, ...] = ()

    def __post_init__(self):
        ordered = tuple(sorted(self.perturbations, key=lambda p: family_rank(p.family)))
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
    def observation(self) -> tuple[Perturbation, ...]:
        return tuple(p for p in self.perturbations if p.kind == "observation")

    @property
    def dynamics(self) -> tuple[Perturbation, ...]:
        return tuple(p for p in self.perturbations if p.kind == "dynamics")

    @property
    def latent(self) -> tuple[Perturbation, ...]:
        """Applied by the evaluator through the agent, not by the env."""
        return tuple(p for p in self.perturbations if p.kind == "latent")

    def __str__(self) -> str:
        return self.label


CLEAN = Condition()


def sweep(levels: Mapping[str, Iterable[float]]) -> list[Condition]:
    """Clean, then each family alone at each of its levels, in the mapping's order."""
    return [CLEAN] + [Condition((Perturbation(family, level),)) for family, values in levels.items()
                      for level in values]


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
