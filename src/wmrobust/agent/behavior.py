"""Actor-critic learned on imagined rollouts of the world model.

From every posterior state of the replay batch, the actor imagines ``imag_horizon`` steps;
the critic is regressed onto lambda-returns; the actor maximizes them, either by
backpropagating through the learned dynamics (DreamerV2 on DMC) or by REINFORCE.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from wmrobust.agent.config import AgentConfig
from wmrobust.agent.nets import Actor, ScalarHead, clip_action
from wmrobust.agent.world_model import State, WorldModel, feature


@contextlib.contextmanager
def frozen(module: nn.Module):
    """Let gradients flow through ``module`` without accumulating in its parameters."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def lambda_returns(reward, value, disc, lam: float) -> torch.Tensor:
    """R_t = r_{t+1} + d_{t+1} ((1 - lam) v_{t+1} + lam R_{t+1}), R_H = v_H.
    reward, disc: (H, N) for steps 1..H; value: (H + 1, N) for steps 0..H. Returns (H, N)."""
    returns, last = [], value[-1]
    for t in reversed(range(reward.shape[0])):
        last = reward[t] + disc[t] * ((1 - lam) * value[t + 1] + lam * last)
        returns.append(last)
    return torch.stack(returns[::-1])


class ActorCritic(nn.Module):
    def __init__(self, feat_dim: int, act_dim: int, cfg: AgentConfig):
        super().__init__()
        self.cfg = cfg
        self.actor = Actor(feat_dim, act_dim, cfg)
        self.critic = ScalarHead(feat_dim, cfg)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        # V3 return normalization: EMA of the 5th and 95th return percentiles.
        self.register_buffer("return_low", torch.zeros(()))
        self.register_buffer("return_high", torch.zeros(()))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def imagine(self, wm: WorldModel, start: State) -> tuple[torch.Tensor, list]:
        """Roll the actor out in the world model: features (H + 1, N, F) and the action
        distributions at steps 0..H-1 with their raw (unclipped) sampled actions."""
        state, feats, steps = start, [feature(start)], []
        for _ in range(self.cfg.imag_horizon):
            dist = self.actor(feats[-1].detach())
            action = dist.rsample()
            if self.cfg.actor_grad == "reinforce":
                action = action.detach()
            # Only the transition sees the clipped action; REINFORCE scores the raw sample.
            state = wm.rssm.img_step(state, clip_action(action))
            feats.append(feature(state))
            steps.append((dist, action))
        return torch.stack(feats), steps

    def loss(self, wm: WorldModel, post: State, is_terminal: torch.Tensor):
        """Actor and critic losses from imagination started at the (B, T) posterior states."""
        cfg = self.cfg
        start = {k: v.detach().flatten(0, 1) for k, v in post.items()}
        terminal = is_terminal.flatten()
        n = terminal.shape[0]
        if 0 < cfg.imag_starts < n:
            # A random subset of starts: imagination dominates the update's arithmetic.
            pick = torch.randperm(n, device=terminal.device)[:cfg.imag_starts]
            start, terminal = {k: v[pick] for k, v in start.items()}, terminal[pick]
        with frozen(wm):
            feats, steps = self.imagine(wm, start)
            reward = wm.reward(feats[1:]).mean
            disc = cfg.discount * (torch.sigmoid(wm.cont(feats[1:])[..., 0]) if wm.cont is not None
                                   else torch.ones_like(reward))
        bootstrap = self.slow_critic if cfg.slow_critic_target else self.critic
        with frozen(bootstrap):  # the actor's gradient reaches the features, not the critic
            value = bootstrap(feats).mean
        returns = lambda_returns(reward, value, disc, cfg.return_lambda)
        # Loss weight of step t: the discounted probability that the rollout is still alive.
        alive = torch.cat([(1 - terminal.float())[None], disc[:-1]])
        weight = torch.cumprod(alive, 0).detach()

        scale = torch.ones(())
        if cfg.return_norm:
            low, high = torch.quantile(returns.detach().flatten().float(), torch.tensor([0.05, 0.95], device=returns.device))
            decay = 0.99
            # Kept aside until the update's losses prove finite (commit_return_scale).
            self.pending_scale = (self.return_low * decay + (1 - decay) * low,
                                  self.return_high * decay + (1 - decay) * high)
            scale = (self.pending_scale[1] - self.pending_scale[0]).clamp_min(1.0)
        entropy = torch.stack([dist.entropy() for dist, _ in steps])
        if cfg.actor_grad == "dynamics":
            # V3 (2023) backprops the advantage; v_t keeps its gradient, which reaches the
            # actor through the imagined state s_t (t > 0) like the returns do.
            objective = (returns - value[:-1] if cfg.actor_advantage else returns) / scale
        else:
            # The baseline is the network that bootstraps the returns: DreamerV2 the slow
            # critic, DreamerV3 the critic (its ``slowtar: False``).
            logp = torch.stack([dist.log_prob(action) for dist, action in steps])
            objective = logp * ((returns - value[:-1]) / scale).detach()
        actor_loss = -(weight * (objective + cfg.actor_entropy * entropy)).mean()

        dist = self.critic(feats[:-1].detach())
        critic_loss = -(weight * dist.log_prob(returns.detach())).mean()
        if cfg.slow_critic_reg > 0:
            slow = self.slow_critic(feats[:-1].detach()).mean.detach()
            critic_loss = critic_loss - cfg.slow_critic_reg * (weight * dist.log_prob(slow)).mean()
        metrics = {"loss_actor": actor_loss.detach(), "loss_critic": critic_loss.detach(),
                   "actor_entropy": entropy.mean().detach(), "imag_return": returns.mean().detach()}
        return actor_loss, critic_loss, metrics

    @torch.no_grad()
    def commit_return_scale(self):
        """Take the return percentiles of the last loss into the EMA (after a finite update)."""
        if self.cfg.return_norm:
            self.return_low.copy_(self.pending_scale[0])
            self.return_high.copy_(self.pending_scale[1])

    @torch.no_grad()
    def update_slow_critic(self):
        self.updates += 1
        if self.updates % self.cfg.slow_critic_every == 0:
            mix = self.cfg.slow_critic_fraction
            for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters()):
                slow.lerp_(fast, mix)
