"""Dynamics perturbations: scale physical parameters of a dm_control Physics.

`mass`, `friction` and `gravity` are the implementations the family registry
(``wmrobust.perturb.families``) names: each gives the model arrays its level scales.
Scales always multiply the values the model had when first seen, so applying
them again (after every reset) never compounds.
"""

from __future__ import annotations

import numpy as np

from wmrobust.perturb.spec import Perturbation


def mass(model) -> tuple[np.ndarray, ...]:
    # Inertia too: a uniformly denser body, so the mass distribution (and the body's shape) is unchanged.
    return model.body_mass, model.body_inertia


def friction(model) -> tuple[np.ndarray, ...]:
    return (model.geom_friction,)


def gravity(model) -> tuple[np.ndarray, ...]:
    return (model.opt.gravity,)


def original_parameters(physics, perturbations: tuple[Perturbation, ...]) -> dict[str, list[np.ndarray]]:
    """Copies of the arrays each perturbation scales, as they are now, by family."""
    return {p.family: [array.copy() for array in p.definition.apply(physics.model)] for p in perturbations}


def scale_dynamics(physics, original: dict[str, list[np.ndarray]], perturbations: tuple[Perturbation, ...]) -> None:
    """Set each scaled array to original * level and recompute the model's derived constants."""
    for p in perturbations:
        for array, value in zip(p.definition.apply(physics.model), original[p.family]):
            array[...] = value * p.level
    # Subtree masses and the solver's inverse inertia weights derive from body masses;
    # a scratch MjData keeps mj_setConst from overwriting the simulation state.
    import mujoco  # here, not at the top: the env module picks MUJOCO_GL before mujoco loads

    model = physics.model.ptr
    mujoco.mj_setConst(model, mujoco.MjData(model))
