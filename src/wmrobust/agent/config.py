"""Agent configuration and its named overlays (presets, sizes). No torch import here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class LatentErrorConfig:
    """The latent representation error process of docs/protocol.md section 3."""

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

    def __post_init__(self):
        if self.sigma2 < 0:
            raise ValueError(f"agent.latent_error.sigma2: {self.sigma2} must be >= 0")
        for name in ("mu_range", "sigma2_range"):
            if len(getattr(self, name)) != 2:
                raise ValueError(f"agent.latent_error.{name}: {list(getattr(self, name))} must be [low, high]")
            low, high = getattr(self, name)
            if low > high or (name == "sigma2_range" and low < 0):
                raise ValueError(f"agent.latent_error.{name}: {[low, high]} must be [low, high] with low <= high"
                                 + (" and low >= 0" if name == "sigma2_range" else ""))


@dataclass(frozen=True)
class JacobianConfig:
    """Jacobian regularization of the latent transition (docs/protocol.md section 4)."""

    weight: float = 0.0
    """lambda: weight of E||df/ds||_F^2 in the world-model loss (0 disables it)."""
    estimator: Literal["exact", "projection"] = "projection"
    """exact: the full Jacobian (small models); projection: k Gaussian probes, unbiased."""
    probes: int = 1
    """k, the number of random probes of the projection estimator."""

    def __post_init__(self):
        if self.weight < 0:
            raise ValueError(f"agent.jacobian.weight: {self.weight} must be >= 0")
        if self.probes < 1:
            raise ValueError(f"agent.jacobian.probes: {self.probes} must be >= 1")


@dataclass(frozen=True)
class AgentConfig:
    """A Dreamer agent: world model, actor-critic, latent error and regularization.

    The field defaults are DreamerV2's DMC settings (the ``dreamerv2`` preset at its
    own size); ``preset_overlays`` holds what the ``dreamerv3`` preset and the sizes change.
    """

    preset: Literal["dreamerv2", "dreamerv3"] = "dreamerv2"
    """Named overlay of the Dreamer version's recipe (applied before the size)."""
    size: Literal["default", "tiny", "small", "1m", "S"] = "default"
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
    imag_starts: int = 0
    """Posterior states of the replay batch that start imagination: 0 = all (the references), else a random subset of this many."""

    # World model architecture.
    deter: int = 200
    """Size of the GRU (deterministic) state h_t."""
    gru_blocks: int = 1
    """Blocks of the GRU: each block of h_t is updated from the whole input and only its own part of h_t (block-diagonal recurrence, DreamerV3 since 2024); 1 is the plain GRU."""
    hidden: int = 200
    """Width of the RSSM's hidden layers (transition input, prior and posterior nets)."""
    stoch: int = 32
    """Number of categorical variables in the stochastic state z_t."""
    classes: int = 32
    """Classes per categorical variable."""
    unimix: float = 0.0
    """Mix of the uniform distribution into the categorical latents (DreamerV3: 0.01)."""
    cnn_depth: int = 48
    """Channels of the first conv layer (doubling each stride-2 layer) of encoder and decoder."""
    units: int = 400
    """Width of the MLPs: vector encoder/decoder, reward, continue, actor and critic heads."""
    mlp_layers: int = 4
    """Hidden layers of those MLPs."""
    act: Literal["elu", "silu"] = "elu"
    """Activation function."""
    norm: Literal["none", "layer"] = "none"
    """Normalization after every hidden layer (the GRU is always layer-normalized)."""
    initial_state: Literal["zeros", "learned"] = "zeros"
    """RSSM state at episode starts: zeros (V2) or learned, h0 = tanh(w), z0 the prior's mode at h0 (V3 `initial: learned`)."""
    decoder_in_act: bool = False
    """Image decoder: norm and activation after the linear map to the first 4x4 feature map (current V3) instead of none (V2, V3 2023)."""

    # World model loss.
    kl_dyn: float = 0.8
    """Scale of KL(sg(posterior) || prior), training the prior (V2 balance 0.8; V3 0.5)."""
    kl_rep: float = 0.2
    """Scale of KL(posterior || sg(prior)), training the representation (V2 1-0.8; V3 0.1)."""
    kl_free: float = 1.0
    """Free nats: KL terms below this value are not minimized."""
    kl_free_per_step: bool = False
    """Clip each step's KL at kl_free (V3 free bits) instead of the batch mean (V2 free nats)."""
    symlog: bool = False
    """DreamerV3 symlog: squash vector inputs and regress vector targets in symlog space."""
    twohot: bool = False
    """Reward and critic predict a two-hot distribution over 255 symlog bins (V3) instead of a unit Gaussian (V2)."""
    continue_head: bool = False
    """Learn a continue (1 - terminal) predictor; off uses the constant discount (V2 DMC)."""
    model_lr: float = 3e-4
    """Adam learning rate of the world model."""
    model_eps: float = 1e-5
    """Adam epsilon of the world model."""
    model_clip: float = 100.0
    """Global gradient-norm clip of the world model."""
    model_weight_decay: float = 1e-6
    """Decoupled decay of the world model: every parameter shrinks by this fraction before each step (V2 `model_opt.wd`; V3 0)."""

    # Actor-critic.
    actor_lr: float = 8e-5
    """Adam learning rate of the actor."""
    critic_lr: float = 8e-5
    """Adam learning rate of the critic."""
    ac_eps: float = 1e-5
    """Adam epsilon of actor and critic."""
    ac_clip: float = 100.0
    """Global gradient-norm clip of actor and critic."""
    actor_dist: Literal["trunc_normal", "normal"] = "trunc_normal"
    """Continuous action distribution: tanh-mean truncated normal (V2) or normal with bounded std (V3)."""
    actor_grad: Literal["dynamics", "reinforce"] = "dynamics"
    """Actor gradient: backprop through the learned dynamics (V2 DMC; V3 2023 continuous), or REINFORCE on the raw sample with advantage (R - v) / scale (current V3 recipe)."""
    actor_entropy: float = 1e-4
    """Entropy bonus scale of the actor."""
    min_std: float = 0.1
    """Smallest std of the action distribution."""
    discount: float = 0.99
    """Discount gamma of imagined returns."""
    return_lambda: float = 0.95
    """lambda of the lambda-returns."""
    return_norm: bool = False
    """Scale returns by max(1, EMA of their 5th-95th percentile range) in the actor loss (V3)."""
    actor_advantage: bool = False
    """Dynamics backprop maximizes the advantage (R - v) / scale, v the critic's value with its gradient (V3), instead of R / scale (V2)."""
    slow_critic_every: int = 100
    """Updates between slow-critic updates."""
    slow_critic_fraction: float = 1.0
    """EMA fraction of each slow-critic update (V2: copy every 100; V3: 0.02 every update)."""
    slow_critic_target: bool = True
    """The slow critic bootstraps the lambda-returns (V2); off uses the critic itself (V3)."""
    slow_critic_reg: float = 0.0
    """Scale of the critic's regularizer towards the slow critic's prediction (V3: 1.0)."""

    def __post_init__(self):
        positive = ("deter", "hidden", "stoch", "classes", "cnn_depth", "units", "imag_horizon",
                    "slow_critic_every", "model_lr", "actor_lr", "critic_lr")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"agent.{name}: {getattr(self, name)} must be > 0")
        if self.gru_blocks < 1 or self.deter % self.gru_blocks:
            raise ValueError(f"agent.gru_blocks: {self.gru_blocks} must be >= 1 and divide agent.deter ({self.deter})")
        if self.imag_starts < 0:
            raise ValueError(f"agent.imag_starts: {self.imag_starts} must be >= 0 (0 = all states)")
        if self.mlp_layers < 0:
            raise ValueError(f"agent.mlp_layers: {self.mlp_layers} must be >= 0")
        for name in ("aug_noise_std", "transition_weight_decay", "unimix", "kl_free", "actor_entropy"):
            if getattr(self, name) < 0:
                raise ValueError(f"agent.{name}: {getattr(self, name)} must be >= 0")
        for name in ("discount", "return_lambda", "slow_critic_fraction", "model_weight_decay"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"agent.{name}: {getattr(self, name)} must be in [0, 1]")


# Overlays are RunConfig-level dicts. DreamerV2's DMC recipe is the dataclass defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "dreamerv2": {
        "train": {"batch_size": 16, "batch_length": 50, "train_ratio": 16 * 50 / 5},
    },
    # DreamerV3 as published in 2023 (danijar/dreamerv3 before the 2024 rewrite), whose
    # continuous-control actor learns by backprop through the dynamics; the current official
    # recipe learns every actor by REINFORCE: add agent.actor_grad=reinforce for it.
    "dreamerv3": {
        "agent": {
            "deter": 512, "hidden": 512, "units": 512, "mlp_layers": 2, "cnn_depth": 32,
            "act": "silu", "norm": "layer", "unimix": 0.01, "initial_state": "learned", "decoder_in_act": True,
            "kl_dyn": 0.5, "kl_rep": 0.1, "kl_free": 1.0, "kl_free_per_step": True,
            "symlog": True, "twohot": True, "continue_head": True,
            "model_lr": 1e-4, "model_eps": 1e-8, "model_clip": 1000.0, "model_weight_decay": 0.0,
            "actor_lr": 3e-5, "critic_lr": 3e-5, "ac_eps": 1e-5, "ac_clip": 100.0,
            "actor_dist": "normal", "actor_entropy": 3e-4, "discount": 0.997,
            "return_norm": True, "actor_advantage": True, "slow_critic_every": 1, "slow_critic_fraction": 0.02,
            "slow_critic_target": False, "slow_critic_reg": 1.0,
        },
        "train": {"batch_size": 16, "batch_length": 64, "train_ratio": 512.0},
    },
}

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "agent": {"deter": 32, "hidden": 32, "stoch": 4, "classes": 4, "cnn_depth": 4,
                  "units": 32, "mlp_layers": 1},
        "train": {"batch_size": 4, "batch_length": 16, "threads": 1},
    },
    "small": {
        "agent": {"deter": 128, "hidden": 128, "stoch": 16, "classes": 16, "cnn_depth": 16,
                  "units": 128, "mlp_layers": 2},
    },
    # DreamerV3's size1m, its current size for vector inputs (danijar/dreamerv3 since 2024-12):
    # capacity in the recurrent state, a 512-unit GRU of 8 blocks, with 64-unit layers.
    "1m": {
        "agent": {"deter": 512, "gru_blocks": 8, "hidden": 64, "stoch": 32, "classes": 4, "cnn_depth": 16,
                  "units": 64, "mlp_layers": 2},
    },
    # DreamerV3's S size (about 16M world-model parameters from pixels).
    "S": {
        "agent": {"deter": 512, "hidden": 512, "stoch": 32, "classes": 32, "cnn_depth": 32,
                  "units": 512, "mlp_layers": 2},
    },
}


def preset_overlays(preset: str, size: str) -> list[dict[str, Any]]:
    """RunConfig-level overlays (dicts with agent/train keys) for a preset and size, in order.
    Unknown names give no overlay; building the config then refuses them, naming the key."""
    return [PRESETS.get(preset, {}), SIZES.get(size, {})]
