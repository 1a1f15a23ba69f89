"""Per-token KL estimators between the policy π_θ and a reference π_ref, from sampled tokens only.

With log ρ = log π_ref − log π_θ (Schulman, "Approximating KL Divergence", 2020; verl ``kl_penalty``):
k1 = −log ρ, k2 = ½ (log ρ)², k3 = ρ − 1 − log ρ ("low-variance KL", GRPO's choice), abs = |log ρ|.
log ρ is clamped to [−20, 20] and k3 to [−10, 10], as verl does, so a far-off token cannot produce inf.
"""

from __future__ import annotations

import torch

from mmsft.objectives.registry import register_kl

_LOG_RATIO_CLAMP = 20.0
_K3_CLAMP = 10.0


def _log_ratio(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    return (ref_logp - logp).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)


@register_kl("k1")
def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = log π_θ − log π_ref (unbiased, can be negative)."""
    return -_log_ratio(logp, ref_logp)


@register_kl("k2")
def kl_k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 = ½ (log π_ref − log π_θ)² (biased, ≥ 0; on-policy its gradient equals k1-in-reward)."""
    return 0.5 * _log_ratio(logp, ref_logp).square()


@register_kl("k3")
def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 = ρ − 1 − log ρ (unbiased, ≥ 0, low variance; DeepSeekMath GRPO)."""
    log_ratio = _log_ratio(logp, ref_logp)
    return (log_ratio.exp() - 1.0 - log_ratio).clamp(-_K3_CLAMP, _K3_CLAMP)


@register_kl("abs")
def kl_abs(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """|log π_θ − log π_ref|."""
    return _log_ratio(logp, ref_logp).abs()
