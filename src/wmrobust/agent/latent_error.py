"""Latent representation error processes (docs/protocol.md section 3).

``z~ = z + mu + sigma * xi`` with ``xi ~ N(0, I)``:
- ``none``: z~ = z.
- ``zero_drift``: mu = 0 and a fixed variance sigma2.
- ``nonzero_drift``: mu ~ U[mu_range] and sigma2 ~ U[sigma2_range], drawn afresh for
  every call (every time step) and every batch element, shared across the latent's units.

The world model applies it to the posterior sample at ``cfg.site`` during training, and
``Agent.act`` applies it at test time, so both use this one function.
"""

from __future__ import annotations

import torch

from wmrobust.agent.config import LatentErrorConfig


def apply_latent_error(x: torch.Tensor, cfg: LatentErrorConfig | None) -> torch.Tensor:
    """Add the error process ``cfg`` to ``x`` of shape (batch, units)."""
    if cfg is None or cfg.kind == "none":
        return x
    if cfg.kind == "zero_drift":
        if cfg.sigma2 == 0:
            return x
        return x + cfg.sigma2**0.5 * torch.randn_like(x)
    lead = (*x.shape[:-1], 1)
    mu = torch.empty(lead, device=x.device, dtype=x.dtype).uniform_(*cfg.mu_range)
    sigma2 = torch.empty(lead, device=x.device, dtype=x.dtype).uniform_(*cfg.sigma2_range)
    return x + mu + sigma2.sqrt() * torch.randn_like(x)
