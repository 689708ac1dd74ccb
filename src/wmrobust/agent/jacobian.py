"""Jacobian norms of a batched map f: R^n -> R^m applied row-wise (docs/protocol.md section 4).

f is applied independently to each of N states, so the Jacobian of the whole batch is
block diagonal and one vector-Jacobian product with an (N, m) cotangent gives every
state's ``v^T J_s`` at once.

- exact: cotangents are the m basis vectors: ||J_s||_F^2 = sum_i ||e_i^T J_s||^2.
- projection: k Gaussian probes v: E||v^T J_s||^2 = tr(J_s J_s^T) = ||J_s||_F^2 (unbiased).

With ``create_graph`` the estimate is differentiable in f's parameters, so it can be
minimized (double backpropagation).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def frobenius_sq(
    out: torch.Tensor,
    inputs: Sequence[torch.Tensor],
    estimator: str,
    probes: int = 1,
    create_graph: bool = False,
    chunk: int = 64,
) -> torch.Tensor:
    """Per-state ||d out / d inputs||_F^2, shape (N,). ``out`` (N, m) must depend on the
    ``inputs`` (each (N, n_i), requires_grad) row by row."""
    n, m = out.shape
    if estimator == "exact":
        basis = torch.eye(m, device=out.device, dtype=out.dtype)[:, None, :].expand(m, n, m)
        cotangents, scale = basis, 1.0
    elif estimator == "projection":
        cotangents, scale = torch.randn(probes, n, m, device=out.device, dtype=out.dtype), 1.0 / probes
    else:
        raise ValueError(f"agent.jacobian.estimator: {estimator!r} is not 'exact' or 'projection'")
    total = out.new_zeros(n)
    # Batched VJPs in chunks of cotangents bound the memory of the exact estimator.
    for start in range(0, len(cotangents), chunk):
        grads = torch.autograd.grad(
            out, inputs, cotangents[start : start + chunk], retain_graph=True,
            create_graph=create_graph, is_grads_batched=True,
        )
        total = total + sum(g.pow(2).sum(-1) for g in grads).sum(0)
    return total * scale


def spectral_norm(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, iters: int = 20) -> torch.Tensor:
    """Per-row largest singular value of d f / d x by power iteration on J^T J (JVP then VJP)."""
    x = x.detach()
    u = torch.randn_like(x)
    u = u / u.norm(dim=-1, keepdim=True)
    sigma = x.new_zeros(x.shape[0])
    _, vjp = torch.func.vjp(f, x)
    for _ in range(iters):
        _, ju = torch.func.jvp(f, (x,), (u,))
        (jtju,) = vjp(ju)
        sigma = ju.norm(dim=-1)
        u = jtju / jtju.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return sigma
