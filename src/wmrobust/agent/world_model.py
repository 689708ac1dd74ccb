"""The world model: encoder, RSSM, decoder, reward and continue heads, and its loss.

A latent state is a dict of ``deter`` h_t (..., deter) and ``stoch`` (..., stoch*classes),
the flattened one-hot sample z~_t *after* the latent error process, i.e. exactly what the
transition, the decoder and the heads consume. ``logits`` holds the clean distribution
the KL terms use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmrobust.agent.config import AgentConfig, LatentErrorConfig
from wmrobust.agent.jacobian import frobenius_sq, spectral_norm
from wmrobust.agent.latent_error import apply_latent_error
from wmrobust.agent.nets import MLP, Decoder, Encoder, ScalarHead, dense, glorot_init, norm_act, symexp

State = dict[str, torch.Tensor]


class DecayedAdam(torch.optim.Adam):
    """Adam plus DreamerV2's weight decay: before each step, every parameter of a group with
    ``decay`` > 0 is multiplied by (1 - decay) (decoupled from the gradient, not scaled by the
    learning rate, and on all variables, norms and biases included: its ``wd_pattern: '.*'``).
    The gradients were taken at the undecayed weights, as in the reference."""

    def __init__(self, params, decay: float = 0.0, **kwargs):
        super().__init__(params, **kwargs)
        self.defaults["decay"] = decay
        for group in self.param_groups:
            group.setdefault("decay", decay)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # state dicts saved by a plain Adam carry no decay
            group.setdefault("decay", self.defaults.get("decay", 0.0))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            if group["decay"]:
                for p in group["params"]:
                    p.mul_(1 - group["decay"])
        return super().step(closure)


class BlockLinear(nn.Module):
    """``blocks`` independent linear maps (no bias), block k applied to ``x[..., k, :]``."""

    def __init__(self, blocks: int, inp: int, out: int):
        super().__init__()
        bound = (6 / (inp + out)) ** 0.5  # Glorot-uniform per block, as glorot_init does for nn.Linear
        self.weight = nn.Parameter(torch.empty(blocks, inp, out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One matmul per block over all leading positions (a broadcast matmul per position
        # would expand the weights to every position in the backward pass).
        blocks = x.reshape(-1, *x.shape[-2:]).transpose(0, 1)  # (blocks, positions, inp)
        return torch.bmm(blocks, self.weight).transpose(0, 1).reshape(*x.shape[:-1], -1)


class RSSM(nn.Module):
    """Recurrent state-space model: GRU deterministic path, categorical stochastic path."""

    def __init__(self, embed_dim: int, act_dim: int, cfg: AgentConfig):
        super().__init__()
        self.cfg = cfg
        self.stoch_dim = cfg.stoch * cfg.classes
        self.img_in = dense(self.stoch_dim + act_dim, cfg.hidden, cfg)
        # The three GRU gates come from one fused, layer-normalized linear layer (one per block).
        blocks, width = cfg.gru_blocks, cfg.deter // cfg.gru_blocks
        self.gru = (nn.Linear(cfg.hidden + width, 3 * width, bias=False) if blocks == 1
                    else BlockLinear(blocks, cfg.hidden + width, 3 * width))
        self.gru_norm = nn.LayerNorm(3 * width, eps=1e-3)
        self.prior_net = nn.Sequential(dense(cfg.deter, cfg.hidden, cfg), nn.Linear(cfg.hidden, self.stoch_dim))
        # The posterior net's first layer reads [h, embed]; it is split in two linear maps so
        # the (large) embedding part runs once for a whole sequence instead of once per step.
        self.post_deter = nn.Linear(cfg.deter, cfg.hidden, bias=False)
        self.post_embed = nn.Linear(embed_dim, cfg.hidden, bias=cfg.norm == "none")
        self.post_out = nn.Sequential(*norm_act(cfg.hidden, cfg), nn.Linear(cfg.hidden, self.stoch_dim))
        glorot_init(self)
        if cfg.initial_state == "learned":  # DreamerV3: h0 = tanh(w), w starting at zero
            self.initial_deter = nn.Parameter(torch.zeros(cfg.deter))

    def transition_parameters(self) -> list[nn.Parameter]:
        """Parameters of f(h, z~, a) -> h' (the target of the l2dyn baseline)."""
        return [*self.img_in.parameters(), *self.gru.parameters(), *self.gru_norm.parameters()]

    def initial(self, batch: int, device) -> State:
        """The state episodes start from: zeros, or the learned h0 with z0 the prior's mode
        (straight-through, so the world-model loss trains h0 through z0 as well)."""
        if self.cfg.initial_state == "learned":
            deter = torch.tanh(self.initial_deter).to(device).expand(batch, -1)
            logits = self.prior_logits(deter)
            return {"deter": deter, "stoch": self.sample(logits, sample=False), "logits": logits}
        zeros = torch.zeros
        return {"deter": zeros(batch, self.cfg.deter, device=device),
                "stoch": zeros(batch, self.stoch_dim, device=device),
                "logits": zeros(batch, self.cfg.stoch, self.cfg.classes, device=device)}

    def transition(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """f(h_t, z~_t, a_t) -> h_{t+1}, the map whose Jacobian is regularized."""
        x = self.img_in(torch.cat([stoch, action], -1))
        blocks = deter.unflatten(-1, (self.cfg.gru_blocks, -1))
        x = x.unsqueeze(-2).expand(*blocks.shape[:-1], x.shape[-1])
        reset, cand, update = self.gru_norm(self.gru(torch.cat([x, blocks], -1))).chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1)  # bias towards keeping the old state
        return (update * cand + (1 - update) * blocks).flatten(-2)

    def _logits(self, raw: torch.Tensor) -> torch.Tensor:
        logits = raw.float().reshape(*raw.shape[:-1], self.cfg.stoch, self.cfg.classes)
        if self.cfg.unimix > 0:
            probs = (1 - self.cfg.unimix) * logits.softmax(-1) + self.cfg.unimix / self.cfg.classes
            logits = probs.log()
        return logits

    @staticmethod
    def sample(logits: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """One-hot sample (or mode) with straight-through gradients, flattened."""
        probs = logits.softmax(-1)
        if sample:
            gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp(1e-20, 1)))
            index = (logits + gumbel).argmax(-1)
        else:
            index = logits.argmax(-1)
        onehot = F.one_hot(index, logits.shape[-1]).to(probs.dtype)
        return (onehot + probs - probs.detach()).flatten(-2)

    def img_step(self, state: State, action: torch.Tensor, sample: bool = True) -> State:
        """Prior step: imagine the next state without an observation."""
        deter = self.transition(state["deter"], state["stoch"], action)
        logits = self.prior_logits(deter)
        return {"deter": deter, "stoch": self.sample(logits, sample), "logits": logits}

    def obs_step(self, state: State, action: torch.Tensor, embed: torch.Tensor, is_first: torch.Tensor,
                 error: LatentErrorConfig | None = None, sample: bool = True,
                 embed_proj: torch.Tensor | None = None, initial: State | None = None) -> State:
        """Posterior step after ``action`` and observing ``embed``; ``embed_proj`` is
        ``post_embed(embed)`` when already computed. Episode starts (``is_first``) reset the
        state to ``initial`` (default ``self.initial``) and the action to zeros. (The prior's
        logits follow from ``prior_logits(deter)``.)"""
        keep = (~is_first).to(action.dtype)[:, None]

        def mask(v, m):
            return v * (m if v.dim() == 2 else m[..., None])

        state = {k: mask(v, keep) for k, v in state.items()}
        if self.cfg.initial_state == "learned":
            initial = initial if initial is not None else self.initial(action.shape[0], action.device)
            state = {k: v + mask(initial[k], 1 - keep) for k, v in state.items()}
        action = action * keep
        site = error.site if error is not None else "stoch"
        deter = self.transition(state["deter"], state["stoch"], action)
        if site == "deter":
            deter = apply_latent_error(deter, error)
        if site == "embed":
            embed = apply_latent_error(embed, error)
        if embed_proj is None:
            embed_proj = self.post_embed(embed)
        logits = self._logits(self.post_out(self.post_deter(deter) + embed_proj))
        stoch = self.sample(logits, sample)
        if site == "stoch":
            stoch = apply_latent_error(stoch, error)
        return {"deter": deter, "stoch": stoch, "logits": logits}

    def prior_logits(self, deter: torch.Tensor) -> torch.Tensor:
        return self._logits(self.prior_net(deter))

    def observe(self, embed, action, is_first, state=None, error=None, sample=True) -> tuple[State, torch.Tensor]:
        """Filter a (B, T) sequence: posterior states stacked to (B, T, ...) and the prior's
        logits (B, T, stoch, classes) at the same steps."""
        initial = self.initial(embed.shape[0], embed.device)  # once for the whole sequence
        state = state if state is not None else initial
        site = error.site if error is not None else "stoch"
        if site != "embed":  # noise-free embeddings: project the whole sequence at once
            proj = self.post_embed(embed)
        posts = []
        for t in range(embed.shape[1]):
            state = self.obs_step(state, action[:, t], embed[:, t], is_first[:, t], error, sample,
                                  None if site == "embed" else proj[:, t], initial)
            posts.append(state)
        post = {k: torch.stack([s[k] for s in posts], 1) for k in posts[0]}
        return post, self.prior_logits(post["deter"])


def feature(state: State) -> torch.Tensor:
    """The feature the decoder, heads, actor and critic read: [h, z~]."""
    return torch.cat([state["deter"], state["stoch"]], -1)


def categorical_kl(lhs: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """KL(lhs || rhs) of factorized categoricals given as logits (..., stoch, classes)."""
    logp, logq = lhs.log_softmax(-1), rhs.log_softmax(-1)
    return (logp.exp() * (logp - logq)).sum((-2, -1))


class WorldModel(nn.Module):
    def __init__(self, obs_space: dict, act_dim: int, cfg: AgentConfig):
        super().__init__()
        self.cfg = cfg
        self.key = next(iter(obs_space))
        self.encoder = Encoder(obs_space, cfg)
        self.rssm = RSSM(self.encoder.out_dim, act_dim, cfg)
        self.feat_dim = cfg.deter + self.rssm.stoch_dim
        self.decoder = Decoder(self.feat_dim, obs_space, cfg)
        self.reward = ScalarHead(self.feat_dim, cfg)
        self.cont = MLP(self.feat_dim, 1, cfg) if cfg.continue_head else None

    def optimizer(self) -> DecayedAdam:
        """The world model's optimizer: Adam with the config's decoupled ``model_weight_decay``
        on every parameter; the transition's group adds Adam's coupled L2
        ``transition_weight_decay`` (the l2dyn baseline). Groups: [transition, the rest]."""
        cfg = self.cfg
        transition = {id(p) for p in self.rssm.transition_parameters()}
        groups = [
            {"params": [p for p in self.parameters() if id(p) in transition],
             "weight_decay": cfg.transition_weight_decay},
            {"params": [p for p in self.parameters() if id(p) not in transition]},
        ]
        return DecayedAdam(groups, decay=cfg.model_weight_decay, lr=cfg.model_lr, eps=cfg.model_eps)

    def loss(self, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, State, dict[str, torch.Tensor]]:
        """World-model loss on a (B, T) batch; also the posterior states and metrics."""
        cfg = self.cfg
        # The decoder reconstructs the encoder's input units, from clean observations.
        target = inputs = self.encoder.preprocess(data[self.key])
        if cfg.aug_noise_std > 0 and self.key == "image":
            inputs = inputs + cfg.aug_noise_std * torch.randn_like(inputs)
        embed = self.encoder(inputs)
        post, prior_logits = self.rssm.observe(embed, data["action"], data["is_first"], error=cfg.latent_error)
        feat = feature(post)

        # V2: unit-Gaussian negative log-likelihood (0.5 * squared error); V3: squared error.
        sq = (self.decoder(feat) - target) ** 2
        losses = {"obs": sq.flatten(2).sum(-1).mean() * (1.0 if cfg.symlog else 0.5)}
        losses["reward"] = -self.reward(feat).log_prob(data["reward"]).mean()
        if self.cont is not None:
            cont_target = 1.0 - data["is_terminal"].float()
            losses["cont"] = F.binary_cross_entropy_with_logits(self.cont(feat)[..., 0].float(), cont_target)

        dyn = categorical_kl(post["logits"].detach(), prior_logits)
        rep = categorical_kl(post["logits"], prior_logits.detach())
        if cfg.kl_free_per_step:  # V3 free bits
            losses["dyn"] = dyn.clamp_min(cfg.kl_free).mean()
            losses["rep"] = rep.clamp_min(cfg.kl_free).mean()
        else:  # V2 free nats on the batch mean
            losses["dyn"] = dyn.mean().clamp_min(cfg.kl_free)
            losses["rep"] = rep.mean().clamp_min(cfg.kl_free)
        total = losses["obs"] + losses["reward"] + losses.get("cont", 0.0)
        total = total + cfg.kl_dyn * losses["dyn"] + cfg.kl_rep * losses["rep"]

        metrics = {"kl": dyn.mean().detach()}
        if cfg.jacobian.weight > 0:
            fro2 = self.transition_frobenius_sq(post, data["action"], cfg.jacobian.estimator,
                                                cfg.jacobian.probes, create_graph=True)
            losses["jacobian"] = cfg.jacobian.weight * fro2.mean()
            total = total + losses["jacobian"]
            metrics["jacobian_fro2"] = fro2.detach().mean()
        losses["model"] = total
        metrics.update({f"loss_{k}": v.detach() for k, v in losses.items()})
        return total, post, metrics

    def _transition_inputs(self, post: State, action: torch.Tensor):
        """Detached posterior states s_t = (h_t, z~_t) and the actions a_t taken from them,
        flattened to (N, ...); requires_grad so the Jacobian can be taken."""
        deter = post["deter"][:, :-1].detach().flatten(0, 1).requires_grad_()
        stoch = post["stoch"][:, :-1].detach().flatten(0, 1).requires_grad_()
        return deter, stoch, action[:, 1:].flatten(0, 1)

    def transition_frobenius_sq(self, post: State, action: torch.Tensor, estimator: str, probes: int,
                                create_graph: bool = False) -> torch.Tensor:
        """Per-state ||d f(s_t, a_t) / d s_t||_F^2 (exact or projection estimate), shape (N,)."""
        deter, stoch, act = self._transition_inputs(post, action)
        with torch.enable_grad():
            out = self.rssm.transition(deter, stoch, act)
            return frobenius_sq(out, [deter, stoch], estimator, probes, create_graph)

    def to_tensors(self, data: dict, device) -> dict[str, torch.Tensor]:
        keys = (self.key, "action", "reward", "is_first", "is_terminal")
        return {k: torch.as_tensor(data[k], device=device) for k in keys if k in data}

    @torch.no_grad()
    def jacobian_norms(self, data: dict, probes: int = 16, iters: int = 20) -> dict[str, float]:
        """Mean over posterior states of ``data`` of the Frobenius and spectral norms of d f / d s.

        Frobenius: exact when the config's estimator is exact, else the projection estimate
        with ``probes`` probes per state. Spectral: ``iters`` power iterations with JVPs and
        VJPs (``iters=0`` skips it and reports NaN)."""
        data = self.to_tensors(data, next(self.parameters()).device)
        embed = self.encoder(self.encoder.preprocess(data[self.key]))
        post, _ = self.rssm.observe(embed, data["action"], data["is_first"])
        fro2 = self.transition_frobenius_sq(post, data["action"], self.cfg.jacobian.estimator, probes)
        frobenius = fro2.clamp_min(0).sqrt().mean().item()
        if iters == 0:
            return {"frobenius": frobenius, "spectral": float("nan")}
        deter, stoch, act = self._transition_inputs(post, data["action"])
        split = deter.shape[-1]

        def f(x):
            return self.rssm.transition(x[:, :split], x[:, split:], act)

        with torch.enable_grad():
            spectral = spectral_norm(f, torch.cat([deter, stoch], -1).detach(), iters)
        return {"frobenius": frobenius, "spectral": spectral.mean().item()}

    def observation_units(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder output or target -> [0, 1] image units or raw vector units."""
        if self.key == "image":
            return (x + 0.5).clamp(0, 1)
        return symexp(x) if self.cfg.symlog else x

    @torch.no_grad()
    def open_loop(self, data: dict, context: int, horizon: int) -> dict[str, torch.Tensor]:
        """Filter ``context`` steps, then predict ``horizon`` steps open loop from the data's
        actions (prior modes). Shapes (B, H, ...); see the contract in the package docs."""
        data = self.to_tensors(data, next(self.parameters()).device)
        steps = data["action"].shape[1]
        if steps < context + horizon or context < 1:
            raise ValueError(f"open_loop: sequences of {steps} steps are shorter than context {context} + horizon {horizon}")
        embed = self.encoder(self.encoder.preprocess(data[self.key]))
        post, _ = self.rssm.observe(embed[:, : context + horizon], data["action"][:, : context + horizon],
                                    data["is_first"][:, : context + horizon], sample=False)
        state = {k: v[:, context - 1] for k, v in post.items()}
        preds = []
        for t in range(context, context + horizon):
            state = self.rssm.img_step(state, data["action"][:, t], sample=False)
            preds.append(state)
        prior = {k: torch.stack([s[k] for s in preds], 1) for k in preds[0]}
        feat_pred = feature(prior)
        window = slice(context, context + horizon)
        return {
            "obs_pred": self.observation_units(self.decoder(feat_pred)),
            "obs_true": self.observation_units(self.encoder.preprocess(data[self.key][:, window])),
            "reward_pred": self.reward(feat_pred).mean,
            "reward_true": data["reward"][:, window].float(),
            "latent_pred": feat_pred,
            "latent_post": feature({k: v[:, window] for k, v in post.items()}),
        }
