"""Exploration controls computed from logits the trainer already has.

AceReason-Nemotron 1.1 (Liu et al., arXiv 2506.13284) picks the RL sampling temperature τ so that the
temperature-adjusted entropy of the rollouts,

    H_τ = mean over generated tokens of −Σ_v softmax(z/τ)_v · log softmax(z/τ)_v,

stays near 0.3 (lower: under-exploration; higher: noisy, unstable learning), re-chosen between training stages. H_τ
grows with τ, so :func:`choose_temperature` bisects on a measurement function; the measurement over a model's own
samples is :func:`tasks.objective_study.temperature.measure_entropy` (``mmsft rl pick-temperature``).
"""

from __future__ import annotations

from typing import Callable

import torch

ACEREASON_TARGET = 0.3


def tempered_entropy(log_probs: torch.Tensor, tau: float) -> torch.Tensor:
    """Entropy of softmax(z/τ) per row, from log-softmax rows (shift-invariant: log-probs stand in for logits)."""
    heated = torch.log_softmax(log_probs.float() / tau, dim=-1)
    return -(heated.exp() * heated).sum(-1)


def choose_temperature(entropy_at: Callable[[float], float], target: float = ACEREASON_TARGET, low: float = 0.3,
                       high: float = 1.5, steps: int = 8) -> tuple[float, list[tuple[float, float]]]:
    """τ in [low, high] whose measured H_τ is closest to ``target`` by bisection (H_τ increases with τ); returns τ and
    the (τ, H_τ) measurements made."""
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got {low}, {high}")
    seen: list[tuple[float, float]] = []
    for _ in range(steps):
        mid = 0.5 * (low + high)
        value = float(entropy_at(mid))
        seen.append((mid, value))
        if value < target:
            low = mid
        else:
            high = mid
    best = min(seen, key=lambda pair: abs(pair[1] - target))
    return best[0], seen
