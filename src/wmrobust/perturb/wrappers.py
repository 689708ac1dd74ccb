"""Env wrappers that apply perturbations (composable, in the style of embodied wrappers).

An env here is anything with ``obs_space``, ``act_dim``, ``reset() -> obs`` and
``step(action) -> (obs, reward, done)``; dynamics perturbations also need ``physics``.
"""

from __future__ import annotations

import numpy as np

from wmrobust.perturb.dynamics import original_parameters, scale_dynamics
from wmrobust.perturb.observation import check_observation_perturbations, perturb_observation
from wmrobust.perturb.spec import Perturbation, SpecError


class Wrapper:
    """Forwards everything it does not override to the wrapped env."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        if name == "env":  # not set yet (e.g. while unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self):
        return self.env.reset()

    def step(self, action):
        return self.env.step(action)

    def close(self):
        self.env.close()


class ObservationPerturbation(Wrapper):
    """Perturbs every observation (after reset and after each step).

    Random draws (noise values, mask positions) come from `rng`, which the caller
    derives from the env seed, so a perturbed episode is as reproducible as a clean one.
    Vector observations need `spread`, the per-dimension unit of their noise.
    """

    def __init__(self, env, perturbations: tuple[Perturbation, ...], rng: np.random.Generator,
                 spread: np.ndarray | None = None):
        super().__init__(env)
        check_observation_perturbations(perturbations, next(iter(env.obs_space)))
        self.perturbations = tuple(perturbations)
        self.rng = rng
        self.spread = spread

    def reset(self):
        return perturb_observation(self.env.reset(), self.perturbations, self.rng, self.spread)

    def step(self, action):
        obs, reward, done = self.env.step(action)
        return perturb_observation(obs, self.perturbations, self.rng, self.spread), reward, done


class DynamicsPerturbation(Wrapper):
    """Scales physical parameters (mass, friction, gravity) of the wrapped env's physics.

    The scales are set before each reset, so the first observation already comes from
    the scaled model, and again after it if the reset built a new physics. They always
    multiply the original values, so they never compound across resets.
    """

    def __init__(self, env, perturbations: tuple[Perturbation, ...]):
        super().__init__(env)
        for p in perturbations:
            if p.kind != "dynamics":
                raise SpecError(f"{p.label} is a {p.kind} perturbation, not a dynamics perturbation")
        self.perturbations = tuple(perturbations)
        self._physics = None
        self._original = None

    def _apply(self):
        physics = self.env.physics
        if physics is not self._physics:  # first use, or a rebuilt physics: its values are the originals
            self._physics = physics
            self._original = original_parameters(physics, self.perturbations)
        scale_dynamics(physics, self._original, self.perturbations)

    def reset(self):
        self._apply()
        obs = self.env.reset()
        if self.env.physics is not self._physics:
            self._apply()
        return obs
