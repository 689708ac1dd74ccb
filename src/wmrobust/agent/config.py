"""Agent configuration and its named overlays (presets, sizes). No torch import here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class LatentErrorConfig:
    """The latent representation error process of PROTOCOL section 3."""

    kind: Literal["none", "zero_drift", "nonzero_drift"] = "none"
    """none; zero_drift (mu = 0, fixed sigma2); nonzero_drift (mu, sigma2 drawn uniformly)."""
    sigma2: float = 0.0
    """Variance of the zero-drift error."""
    mu_range: tuple[float, float] = (0.0, 5.0)
    """Non-zero drift: mu_t ~ U[mu_range], resampled every step and batch element."""
    sigma2_range: tuple[float, float] = (0.0, 5.0)
    """Non-zero drift: sigma2_t ~ U[sigma2_range], resampled every step and batch element."""
    site: Literal["stoch", "embed", "deter"] = "stoch"
    """Where the error is added: the posterior stochastic sample (default), the encoder embedding, or the deterministic state."""


@dataclass(frozen=True)
class JacobianConfig:
    """Jacobian regularization of the latent transition (PROTOCOL section 4)."""

    weight: float = 0.0
    """lambda: weight of E||df/ds||_F^2 in the world-model loss (0 disables it)."""
    estimator: Literal["exact", "projection"] = "projection"
    """exact: the full Jacobian (small models); projection: k Gaussian probes, unbiased."""
    probes: int = 1
    """k, the number of random probes of the projection estimator."""


@dataclass(frozen=True)
class AgentConfig:
    """A Dreamer agent: world model, actor-critic, latent error and regularization."""

    preset: Literal["dreamerv2", "dreamerv3"] = "dreamerv2"
    """Named overlay of the Dreamer version's recipe (applied before the size)."""
    size: Literal["default", "tiny", "small", "S"] = "default"
    """Named size overlay; default keeps the preset's own size."""
    latent_error: LatentErrorConfig = field(default_factory=LatentErrorConfig)
    """Training-time latent representation error."""
    jacobian: JacobianConfig = field(default_factory=JacobianConfig)
    """Jacobian regularization of the transition."""
    aug_noise_std: float = 0.0
    """Std of gaussian pixel noise added to training images (the `aug` baseline)."""
    transition_weight_decay: float = 0.0
    """L2 weight decay on the transition network only (the `l2dyn` baseline)."""
    imag_horizon: int = 15
    """Imagination horizon of actor-critic learning."""


def preset_overlays(preset: str, size: str) -> list[dict[str, Any]]:
    """RunConfig-level overlays (dicts with agent/train keys) for a preset and size, in order."""
    return []
