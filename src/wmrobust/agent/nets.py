"""Building blocks: MLPs, the CNN encoder/decoder, and the output distributions."""

from __future__ import annotations

import math

import torch
from torch import nn

from wmrobust.agent.config import AgentConfig

ACTIVATIONS = {"elu": nn.ELU, "silu": nn.SiLU}


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def norm_act(out: int, cfg: AgentConfig) -> list[nn.Module]:
    return ([nn.LayerNorm(out, eps=1e-3)] if cfg.norm == "layer" else []) + [ACTIVATIONS[cfg.act]()]


def glorot_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every linear and conv layer of ``module``.

    The original DreamerV2 (Keras defaults) and DreamerV3 (fan-avg scaling) initialize this
    way; PyTorch's default draws weights with about a third of that variance."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def dense(inp: int, out: int, cfg: AgentConfig) -> nn.Sequential:
    """Linear (bias only without norm), optional LayerNorm, activation: the hidden layer used everywhere."""
    return nn.Sequential(nn.Linear(inp, out, bias=cfg.norm == "none"), *norm_act(out, cfg))


class MLP(nn.Sequential):
    """``cfg.mlp_layers`` hidden layers of ``cfg.units``, then a linear output layer."""

    def __init__(self, inp: int, out: int, cfg: AgentConfig, zero_init: bool = False):
        layers = []
        for _ in range(cfg.mlp_layers):
            layers.append(dense(inp, cfg.units, cfg))
            inp = cfg.units
        head = nn.Linear(inp, out)
        super().__init__(*layers, head)
        glorot_init(self)
        if zero_init:  # DreamerV3: reward and critic start out predicting zero
            nn.init.zeros_(head.weight)


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW feature map (DreamerV3's conv norm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def conv_stages(image_size: int) -> int:
    """Stride-2 layers taking the image down to 4x4."""
    stages = int(math.log2(image_size // 4))
    if 4 * 2**stages != image_size:
        raise ValueError(f"env.image_size: {image_size} must be 4 times a power of two (e.g. 64)")
    return stages


class Encoder(nn.Module):
    """Observation -> embedding. Images: stride-2 4x4 convs down to 4x4; vectors: an MLP."""

    def __init__(self, obs_space: dict, cfg: AgentConfig):
        super().__init__()
        self.key, (shape, _) = next(iter(obs_space.items()))
        self.cfg = cfg
        if self.key == "image":
            layers, channels = [], shape[-1]
            for i in range(conv_stages(shape[0])):
                depth = cfg.cnn_depth * 2**i
                layers.append(nn.Conv2d(channels, depth, 4, 2, 1, bias=cfg.norm == "none"))
                if cfg.norm == "layer":
                    layers.append(ChannelNorm(depth, eps=1e-3))
                layers.append(ACTIVATIONS[cfg.act]())
                channels = depth
            self.net = nn.Sequential(*layers, nn.Flatten())
            self.out_dim = channels * 4 * 4
        else:
            layers, inp = [], shape[0]
            for _ in range(cfg.mlp_layers):
                layers.append(dense(inp, cfg.units, cfg))
                inp = cfg.units
            self.net = nn.Sequential(*layers)
            self.out_dim = inp
        glorot_init(self)

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 image (..., H, W, C) -> float in [-0.5, 0.5]; vectors symlog-ed when configured."""
        if self.key == "image":
            return obs.float() / 255.0 - 0.5
        return symlog(obs) if self.cfg.symlog else obs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: preprocessed observations (..., *obs_shape) -> (..., out_dim)."""
        lead = x.shape[: -3 if self.key == "image" else -1]
        if self.key == "image":
            x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = x.reshape(-1, x.shape[-1])
        return self.net(x).reshape(*lead, self.out_dim)


class Decoder(nn.Module):
    """Feature -> observation mean, mirroring the encoder (transposed convs for images)."""

    def __init__(self, feat_dim: int, obs_space: dict, cfg: AgentConfig):
        super().__init__()
        self.key, (shape, _) = next(iter(obs_space.items()))
        self.shape = tuple(shape)
        if self.key == "image":
            stages = conv_stages(shape[0])
            top = cfg.cnn_depth * 2 ** (stages - 1)
            self.top = top
            self.inp = nn.Linear(feat_dim, top * 4 * 4, bias=not cfg.decoder_in_act or cfg.norm == "none")
            # Current DreamerV3 normalizes and activates the first feature map (its `space`
            # layer); DreamerV2 and DreamerV3 (2023) feed the linear map to the conv directly.
            self.inp_act = nn.Sequential(
                *([ChannelNorm(top, eps=1e-3)] if cfg.decoder_in_act and cfg.norm == "layer" else []),
                *([ACTIVATIONS[cfg.act]()] if cfg.decoder_in_act else []))
            layers, channels = [], top
            for i in reversed(range(stages)):
                last = i == 0
                out = shape[-1] if last else cfg.cnn_depth * 2 ** (i - 1)
                layers.append(nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=last or cfg.norm == "none"))
                if not last:
                    if cfg.norm == "layer":
                        layers.append(ChannelNorm(out, eps=1e-3))
                    layers.append(ACTIVATIONS[cfg.act]())
                channels = out
            self.net = nn.Sequential(*layers)
            glorot_init(self)
        else:
            self.net = MLP(feat_dim, shape[0], cfg)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """(..., feat_dim) -> (..., *obs_shape): images in [-0.5, 0.5] units, vectors as targets."""
        lead = feat.shape[:-1]
        if self.key == "image":
            x = self.inp(feat.reshape(-1, feat.shape[-1])).reshape(-1, self.top, 4, 4)
            x = self.net(self.inp_act(x).contiguous(memory_format=torch.channels_last))
            return x.permute(0, 2, 3, 1).reshape(*lead, *self.shape)
        return self.net(feat)


class TwoHot:
    """Categorical over 255 bins equally spaced in symlog space (DreamerV3's reward and critic)."""

    def __init__(self, logits: torch.Tensor, low: float = -20.0, high: float = 20.0):
        self.logits = logits
        self.bins = torch.linspace(low, high, logits.shape[-1], device=logits.device)

    @property
    def mean(self) -> torch.Tensor:
        return symexp((self.logits.softmax(-1) * self.bins).sum(-1))

    def log_prob(self, target: torch.Tensor) -> torch.Tensor:
        x = symlog(target).clamp(self.bins[0], self.bins[-1])
        step = self.bins[1] - self.bins[0]
        pos = (x - self.bins[0]) / step
        below = pos.floor().long().clamp(0, len(self.bins) - 2)
        frac = (pos - below).clamp(0, 1)
        logp = self.logits.log_softmax(-1)
        return (1 - frac) * logp.gather(-1, below[..., None])[..., 0] + frac * logp.gather(-1, below[..., None] + 1)[..., 0]


class UnitGaussian:
    """Normal with std 1 (DreamerV2's reward and critic): log_prob is -0.5 squared error, no constant."""

    def __init__(self, mean: torch.Tensor):
        self.mean = mean

    def log_prob(self, target: torch.Tensor) -> torch.Tensor:
        return -0.5 * (self.mean - target) ** 2


class ScalarHead(nn.Module):
    """An MLP predicting a scalar distribution: two-hot (V3) or unit Gaussian (V2)."""

    def __init__(self, inp: int, cfg: AgentConfig):
        super().__init__()
        self.twohot = cfg.twohot
        self.net = MLP(inp, 255 if cfg.twohot else 1, cfg, zero_init=cfg.twohot)

    def forward(self, feat: torch.Tensor):
        out = self.net(feat)
        return TwoHot(out.float()) if self.twohot else UnitGaussian(out[..., 0])


def normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


class TruncNormal:
    """Normal truncated to [-1, 1], reparameterized through the inverse CDF (DreamerV2's actor)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        self.loc, self.scale = loc, scale
        self.alpha, self.beta = (-1 - loc) / scale, (1 - loc) / scale
        self.cdf_alpha = normal_cdf(self.alpha)
        self.z = (normal_cdf(self.beta) - self.cdf_alpha).clamp_min(1e-6)

    def rsample(self) -> torch.Tensor:
        u = torch.rand_like(self.loc)
        p = (self.cdf_alpha + u * self.z).clamp(1e-6, 1 - 1e-6)
        return (self.loc + self.scale * torch.special.ndtri(p)).clamp(-1 + 1e-6, 1 - 1e-6)

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        u = (x - self.loc) / self.scale
        logp = -0.5 * u**2 - 0.5 * math.log(2 * math.pi) - self.scale.log() - self.z.log()
        return logp.sum(-1)

    def entropy(self) -> torch.Tensor:
        def pdf(x):
            return torch.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)

        ent = (math.log(math.sqrt(2 * math.pi * math.e)) + self.scale.log() + self.z.log()
               + (self.alpha * pdf(self.alpha) - self.beta * pdf(self.beta)) / (2 * self.z))
        return ent.sum(-1)


def clip_action(action: torch.Tensor) -> torch.Tensor:
    """Elementwise clip to [-1, 1] as DreamerV3 clips the transition's action input
    (``a / sg(max(1, |a|))``: inside the bounds the identity, outside the bound with the
    gradient scaled by 1 / |a|). Applied only where an action is used, never to the sample
    a policy-gradient estimator scores."""
    return action / action.detach().abs().clamp_min(1.0)


class BoundedNormal:
    """Normal with tanh mean and bounded std (V3). Samples are not clipped: REINFORCE must
    score the raw sample (the log-density of a clipped one is biased towards the bounds);
    the environment and the transition input clip it (``clip_action``)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        self.dist = torch.distributions.Normal(loc, scale)

    def rsample(self) -> torch.Tensor:
        return self.dist.rsample()

    @property
    def mode(self) -> torch.Tensor:
        return self.dist.loc

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(x).sum(-1)

    def entropy(self) -> torch.Tensor:
        return self.dist.entropy().sum(-1)


class Actor(nn.Module):
    """Feature -> distribution over continuous actions in [-1, 1]."""

    def __init__(self, inp: int, act_dim: int, cfg: AgentConfig):
        super().__init__()
        self.cfg = cfg
        self.net = MLP(inp, 2 * act_dim, cfg)

    def forward(self, feat: torch.Tensor):
        mean, std = self.net(feat).float().chunk(2, -1)
        mean = torch.tanh(mean)
        if self.cfg.actor_dist == "trunc_normal":
            return TruncNormal(mean, 2 * torch.sigmoid(std / 2) + self.cfg.min_std)
        return BoundedNormal(mean, (1 - self.cfg.min_std) * torch.sigmoid(std + 2) + self.cfg.min_std)
