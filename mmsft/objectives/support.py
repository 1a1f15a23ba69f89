"""Divergences between two distributions known only on a shared support of K token ids per position (a scorer's
top-k, or all V ids), plus one *tail bucket* holding the rest of each distribution's mass.

With P on the support (log-probs ``p_logp`` (B, T, K)) and tail mass P_tail = 1 − Σ_k P_k (and likewise Q), every
divergence is taken between the two (K+1)-category distributions. This is exact when the support is the whole
vocabulary, and otherwise a lower bound of the full-vocabulary divergence (data-processing inequality) that matches it
to first order in the tail mass — the usual top-k distillation approximation, with the remainder kept rather than
renormalised away. A tail whose reference mass (``p``) is below ``TAIL_EPS`` is treated as empty for both
distributions: with a complete support both tails are rounding noise, and keeping them would inject a spurious
gradient of order Q_k through 0/0-sized ratios.
"""

from __future__ import annotations

import math

import torch

TAIL_EPS = 1e-6
_LOG_FLOOR = math.log(1e-30)


def _tail_log(logp: torch.Tensor) -> torch.Tensor:
    """log(1 − Σ_k exp(logp_k)) per position, floored (the tail of a distribution known on K ids)."""
    mass = logp.exp().sum(-1).clamp(max=1.0)
    return torch.log1p(-mass.clamp(max=1.0 - 1e-12)).clamp(min=_LOG_FLOOR)


def with_tail(p_logp: torch.Tensor, q_logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(P, Q) as (B, T, K+1) log-probs with the tail bucket appended, and the (B, T, K+1) mask of live categories."""
    p_tail, q_tail = _tail_log(p_logp.float()), _tail_log(q_logp.float())
    live_tail = p_tail.exp() >= TAIL_EPS
    p = torch.cat([p_logp.float(), p_tail.unsqueeze(-1)], -1)
    q = torch.cat([q_logp.float(), q_tail.unsqueeze(-1)], -1)
    live = torch.cat([torch.ones_like(p_logp, dtype=torch.bool), live_tail.unsqueeze(-1)], -1)
    return p, q, live


def kl(p: torch.Tensor, q: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """KL(P‖Q) = Σ_v P_v (log P_v − log Q_v) over the live categories, per position (B, T)."""
    terms = p.exp() * (p - q)
    return torch.where(live, terms, torch.zeros_like(terms)).sum(-1)


def generalized_jsd(teacher: torch.Tensor, student: torch.Tensor, live: torch.Tensor, beta: float) -> torch.Tensor:
    """Generalised JSD of GKD (Agarwal et al., arXiv 2306.13649), TRL's convention with P = teacher, Q = student:
    D = β·KL(P‖M) + (1 − β)·KL(Q‖M), M = β·P + (1 − β)·Q; β = 0 is forward KL(P‖Q), β = 1 reverse KL(Q‖P)."""
    if beta <= 0.0:
        return kl(teacher, student, live)
    if beta >= 1.0:
        return kl(student, teacher, live)
    mixture = torch.logsumexp(torch.stack([teacher + math.log(beta), student + math.log(1.0 - beta)]), dim=0)
    return beta * kl(teacher, mixture, live) + (1.0 - beta) * kl(student, mixture, live)
