"""Perturbation suite: the family registry and condition parsing (pure Python), and env
wrappers that apply them.

``from wmrobust.perturb import parse_condition`` loads neither numpy-heavy code nor
mujoco; the wrappers load on first use.
"""

from wmrobust.perturb.families import FAMILIES, Family
from wmrobust.perturb.spec import CLEAN, Condition, Perturbation, SpecError, parse_condition, sweep

_WRAPPERS = ("ObservationPerturbation", "DynamicsPerturbation", "Wrapper")

__all__ = ["CLEAN", "FAMILIES", "Condition", "Family", "Perturbation", "SpecError", "parse_condition", "sweep"]


def __getattr__(name):
    if name in _WRAPPERS:
        from wmrobust.perturb import wrappers

        return getattr(wrappers, name)
    raise AttributeError(f"module 'wmrobust.perturb' has no attribute {name!r}")
