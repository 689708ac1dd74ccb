"""Dynamics perturbations: scale physical parameters of a dm_control Physics.

Scales always multiply the parameters the model had when first seen, so applying
them again (after every reset) never compounds.
"""

from __future__ import annotations

import numpy as np

from wmrobust.perturb.spec import Perturbation

# family -> the model fields it scales. Mass scales inertia too: a uniformly denser
# body, so the mass distribution (and the body's shape) is unchanged.
FIELDS = {
    "mass": ("body_mass", "body_inertia"),
    "friction": ("geom_friction",),
    "gravity": ("opt.gravity",),
}


def _get(model, field: str) -> np.ndarray:
    for name in field.split("."):
        model = getattr(model, name)
    return model


def original_parameters(physics, perturbations: tuple[Perturbation, ...]) -> dict[str, np.ndarray]:
    """Copies of the fields the perturbations scale, as they are now."""
    return {f: _get(physics.model, f).copy() for p in perturbations for f in FIELDS[p.family]}


def scale_dynamics(physics, original: dict[str, np.ndarray], perturbations: tuple[Perturbation, ...]) -> None:
    """Set each scaled field to original * level and recompute the model's derived constants."""
    for p in perturbations:
        for field in FIELDS[p.family]:
            _get(physics.model, field)[...] = original[field] * p.level
    # Subtree masses and the solver's inverse inertia weights derive from body masses;
    # a scratch MjData keeps mj_setConst from overwriting the simulation state.
    import mujoco  # here, not at the top: the env module picks MUJOCO_GL before mujoco loads

    model = physics.model.ptr
    mujoco.mj_setConst(model, mujoco.MjData(model))
