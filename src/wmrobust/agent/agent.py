"""The agent: world model + actor-critic, their optimizers, acting and one update."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmrobust.agent.behavior import ActorCritic
from wmrobust.agent.compiled import compile_steps
from wmrobust.agent.config import AgentConfig, LatentErrorConfig
from wmrobust.agent.world_model import WorldModel, feature
from wmrobust.io import atomic_path


class Agent(nn.Module):
    def __init__(self, obs_space: dict, act_dim: int, cfg: AgentConfig, device: str = "cpu",
                 precision: str = "float32", compile: bool = False):
        super().__init__()
        if len(obs_space) != 1 or next(iter(obs_space)) not in ("image", "vector"):
            raise ValueError(f"obs_space: expected one 'image' or 'vector' entry, got {sorted(obs_space)}")
        self.cfg = cfg
        self.obs_space, self.act_dim = obs_space, act_dim
        self.device = torch.device(device)
        self.autocast = precision == "bfloat16"
        self.world_model = WorldModel(obs_space, act_dim, cfg)
        self.behavior = ActorCritic(self.world_model.feat_dim, act_dim, cfg)
        self.to(self.device)
        self.compiled = compile and compile_steps(self.world_model.rssm)

    # The optimizers exist once learning asks for them: the first one imports torch._dynamo
    # (~3 s of CPU), which evaluating, collecting and rolling out never need.

    @cached_property
    def model_opt(self) -> torch.optim.Optimizer:
        return self.world_model.optimizer()

    @cached_property
    def actor_opt(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.behavior.actor.parameters(), lr=self.cfg.actor_lr, eps=self.cfg.ac_eps)

    @cached_property
    def critic_opt(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.behavior.critic.parameters(), lr=self.cfg.critic_lr, eps=self.cfg.ac_eps)

    # ---- acting ----------------------------------------------------------------

    def initial_state(self, batch_size: int) -> dict[str, torch.Tensor]:
        state = self.world_model.rssm.initial(batch_size, self.device)
        state["action"] = torch.zeros(batch_size, self.act_dim, device=self.device)
        return state

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], state: dict[str, torch.Tensor], mode: str = "explore",
            latent_error: LatentErrorConfig | None = None) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
        """One step for a batch of observations (plus 'is_first').

        explore samples the action, eval takes the mode. The latent error is
        ``latent_error`` when given; otherwise the config's training-time error in
        explore mode and none in eval mode (so clean evaluation is clean)."""
        if mode not in ("explore", "eval"):
            raise ValueError(f"act: mode {mode!r} is not 'explore' or 'eval'")
        if latent_error is None and mode == "explore":
            latent_error = self.cfg.latent_error
        wm = self.world_model
        x = torch.as_tensor(obs[wm.key], device=self.device)
        is_first = torch.as_tensor(obs["is_first"], device=self.device, dtype=torch.bool)
        embed = wm.encoder(wm.encoder.preprocess(x))
        latent = {k: v for k, v in state.items() if k != "action"}
        post = wm.rssm.obs_step(latent, state["action"], embed, is_first, latent_error)
        dist = self.behavior.actor(feature(post))
        action = dist.rsample() if mode == "explore" else dist.mode
        action = action.clamp(-1, 1)
        return action.cpu().numpy().astype(np.float32), {**post, "action": action}

    # ---- learning --------------------------------------------------------------

    def update(self, batch: dict) -> dict[str, float]:
        """One world-model and one actor-critic step on a (B, T) replay batch.

        Returns float metrics (``loss_*``...). When a loss is not finite no parameter
        is changed, so a diverged run keeps its last finite weights. The losses are checked
        once, after both backward passes, with the metrics: one host synchronisation per
        update (a GPU queue never drains mid-update)."""
        data = self.world_model.to_tensors(batch, self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            model_loss, post, metrics = self.world_model.loss(data)
        self.model_opt.zero_grad(set_to_none=True)
        model_loss.backward()
        nn.utils.clip_grad_norm_(self.world_model.parameters(), self.cfg.model_clip)

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            actor_loss, critic_loss, ac_metrics = self.behavior.loss(self.world_model, post, data["is_terminal"])
        metrics.update(ac_metrics)
        self.actor_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        (actor_loss + critic_loss).backward()
        nn.utils.clip_grad_norm_(self.behavior.actor.parameters(), self.cfg.ac_clip)
        nn.utils.clip_grad_norm_(self.behavior.critic.parameters(), self.cfg.ac_clip)
        names = list(metrics)
        losses = torch.stack([model_loss.detach(), actor_loss.detach(), critic_loss.detach()]).float()
        values = torch.cat([torch.stack([metrics[k].float() for k in names]), torch.isfinite(losses).all()[None]])
        *numbers, finite = values.tolist()
        if finite:
            # Step only now: imagination saved world-model weights its backward pass needed.
            self.model_opt.step()
            self.actor_opt.step()
            self.critic_opt.step()
            self.behavior.commit_return_scale()
            self.behavior.update_slow_critic()
        return dict(zip(names, numbers))

    # ---- persistence -----------------------------------------------------------

    def optimizer_state(self) -> dict:
        return {"model": self.model_opt.state_dict(), "actor": self.actor_opt.state_dict(),
                "critic": self.critic_opt.state_dict()}

    def load_optimizer_state(self, state: dict) -> None:
        self.model_opt.load_state_dict(state["model"])
        self.actor_opt.load_state_dict(state["actor"])
        self.critic_opt.load_state_dict(state["critic"])

    def save(self, path: str | Path) -> None:
        """Weights only (including the slow critic and return statistics), written atomically."""
        with atomic_path(path) as tmp:
            torch.save({"agent": self.state_dict()}, tmp)

    @classmethod
    def load(cls, path: str | Path, obs_space: dict, act_dim: int, cfg: AgentConfig,
             device: str = "cpu") -> "Agent":
        agent = cls(obs_space, act_dim, cfg, device)
        try:
            state = torch.load(path, map_location=agent.device, weights_only=True)
            agent.load_state_dict(state["agent"])
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such model file") from None
        except Exception as err:  # unpickling and shape errors come in many types
            raise ValueError(f"{path}: cannot load agent weights for this config ({err})") from err
        return agent
