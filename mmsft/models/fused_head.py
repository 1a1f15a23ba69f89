"""LM head + log-softmax + target gather as one autograd function that never holds more than one chunk of logits.

The forward computes, chunk by chunk over tokens, the logits ``z = h Wᵀ (+ b)`` (then soft-capping and temperature),
keeps only each token's log-sum-exp (and entropy), and returns ``log p(target)``. The backward recomputes each chunk's
logits and turns them into ``∂z = g·(onehot − p)`` (plus the entropy term ``−g_H·p·(log p + H)``), then accumulates
``∂h = ∂z W`` and ``∂W += ∂zᵀ h`` into one fp32 buffer in place. Memory: one chunk of logits and its gradient, plus
the weight gradient the head needs anyway — unlike activation checkpointing per chunk, where the autograd engine
materialises a full V × H weight gradient for every chunk and sums them (measured in benchmarks/logprob_memory.py).
The same idea as Liger's fused linear cross-entropy (Hsu et al. 2024, arXiv 2410.10989) and TRL's chunked log-prob
kernel, written over plain torch ops.

Under autocast the matmuls run in the autocast dtype (as ``head(hidden)`` would) and the weight gradient accumulates
in fp32 (rounding each chunk's product to bf16 before summing biases training; TRL's kernel notes the same).
"""

from __future__ import annotations

from typing import Any

import torch


def _logits(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, temperature: float,
            softcap: float | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(transformed fp32 logits, tanh(u/c) or None) for one chunk of hidden states already in the compute dtype."""
    z = (h @ weight.t()).float()
    if bias is not None:
        z = z + bias.float()
    squashed = None
    if softcap:
        squashed = torch.tanh(z / softcap)
        z = squashed * softcap
    if temperature != 1.0:
        z = z / temperature
    return z, squashed


class FusedHeadLogprob(torch.autograd.Function):
    """``apply(hidden (N, H), weight (V, H), bias (V,) | None, targets (N,), temperature, softcap, chunk,
    with_entropy)`` → ``(logp (N,), entropy (N,) or an empty tensor)``."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                targets: torch.Tensor, temperature: float, softcap: float | None, chunk: int,
                with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor]:
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        n = hidden.shape[0]
        lse = torch.empty(n, dtype=torch.float32, device=hidden.device)
        logp = torch.empty(n, dtype=torch.float32, device=hidden.device)
        entropy = torch.empty(n if with_entropy else 0, dtype=torch.float32, device=hidden.device)
        with torch.autocast(device, enabled=False), torch.no_grad():
            w = weight.to(dtype)
            for start in range(0, n, chunk):
                part = slice(start, start + chunk)
                z, _ = _logits(hidden[part].to(dtype), w, bias, temperature, softcap)
                lse[part] = torch.logsumexp(z, dim=-1)
                logp[part] = z.gather(-1, targets[part].unsqueeze(-1)).squeeze(-1) - lse[part]
                if with_entropy:
                    log_p = z - lse[part].unsqueeze(-1)
                    entropy[part] = -(torch.exp(log_p) * log_p).sum(-1)
        ctx.save_for_backward(hidden, weight, bias, targets, lse, entropy)
        ctx.dtype, ctx.temperature, ctx.softcap, ctx.chunk, ctx.with_entropy = dtype, temperature, softcap, chunk, with_entropy
        ctx.set_materialize_grads(False)
        return logp, entropy

    @staticmethod
    def backward(ctx: Any, grad_logp: torch.Tensor | None, grad_entropy: torch.Tensor | None) -> tuple:
        hidden, weight, bias, targets, lse, entropy = ctx.saved_tensors
        needs_h, needs_w, needs_b = ctx.needs_input_grad[:3]
        grad_h = torch.zeros_like(hidden, dtype=torch.float32) if needs_h else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if needs_w else None
        grad_b = torch.zeros_like(bias, dtype=torch.float32) if needs_b and bias is not None else None
        use_entropy = ctx.with_entropy and grad_entropy is not None
        if grad_logp is None and not use_entropy:
            return None, None, None, None, None, None, None, None
        with torch.autocast(hidden.device.type, enabled=False), torch.no_grad():
            w = weight.to(ctx.dtype)
            for start in range(0, hidden.shape[0], ctx.chunk):
                part = slice(start, start + ctx.chunk)
                h = hidden[part].to(ctx.dtype)
                z, squashed = _logits(h, w, bias, ctx.temperature, ctx.softcap)
                log_p = z - lse[part].unsqueeze(-1)
                p = torch.exp(log_p)
                dz = torch.zeros_like(z)
                if grad_logp is not None:
                    g = grad_logp[part].float()
                    dz = -p * g.unsqueeze(-1)
                    dz.scatter_add_(-1, targets[part].unsqueeze(-1), g.unsqueeze(-1))
                if use_entropy:
                    dz -= grad_entropy[part].float().unsqueeze(-1) * p * (log_p + entropy[part].unsqueeze(-1))
                if ctx.temperature != 1.0:
                    dz = dz / ctx.temperature
                if squashed is not None:
                    dz = dz * (1 - squashed * squashed)
                if grad_h is not None:
                    grad_h[part] = (dz.to(ctx.dtype) @ w).float()
                if grad_w is not None:
                    grad_w.addmm_(dz.t(), hidden[part].float())
                if grad_b is not None:
                    grad_b += dz.sum(0)
        return (None if grad_h is None else grad_h.to(hidden.dtype), None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(bias.dtype), None, None, None, None, None)
