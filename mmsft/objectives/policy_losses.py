"""Policy-gradient losses over :class:`TokenBatch` (registry ``LOSSES``), each with its own argument dataclass.

A loss returns the aggregated on-policy term only; the KL-to-reference and entropy terms are separate components
added by :class:`mmsft.objectives.compose.Objective`, so every loss gets them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.registry import register_loss

_LOG_RATIO_CLAMP = 20.0


@dataclass
class ClipArgs:
    """Arguments of the clipped surrogates (PPO, GSPO)."""

    clip_low: float = field(default=0.2, metadata={"help": "Lower clip ε_low of the importance ratio.", "ge": 0})
    clip_high: float = field(default=0.2, metadata={"help": "Upper clip ε_high (DAPO clip-higher: 0.28).", "ge": 0})
    dual_clip: float = field(default=0.0, metadata={"help": "Dual-clip constant c for negative advantages "
                                                            "(0 disables; verl uses 3.0).", "ge": 0})


@dataclass
class CispoArgs:
    """Arguments of CISPO."""

    clip_high: float = field(default=4.0, metadata={"help": "Cap ε_high of the detached importance weight "
                                                            "(weight ≤ 1 + ε_high).", "ge": 0})


def token_advantages(batch: TokenBatch) -> torch.Tensor:
    adv = batch.advantages
    return adv.unsqueeze(-1).expand_as(batch.logp) if adv.dim() == 1 else adv


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.to(values.dtype)
    return float((values.detach() * m).sum() / m.sum().clamp(min=1.0))


def clipped_surrogate(log_ratio: torch.Tensor, adv: torch.Tensor, args: ClipArgs, mask: torch.Tensor
                      ) -> tuple[torch.Tensor, dict[str, float]]:
    ratio = torch.exp(log_ratio.clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - args.clip_low, 1.0 + args.clip_high)
    pg = torch.maximum(unclipped, clipped)
    metrics = {"clipfrac": masked_mean((clipped > unclipped).float(), mask)}
    if args.dual_clip > 0:
        dual = torch.minimum(pg, -args.dual_clip * adv)
        pg = torch.where(adv < 0, dual, pg)
    return pg, metrics


def ppo_clip_terms(batch: TokenBatch, args: ClipArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-token PPO-clip losses (B, T) and metrics; shared by ``ppo_clip`` and hybrids such as CHORD."""
    adv = token_advantages(batch)
    log_ratio = batch.logp - batch.old_logp
    pg, metrics = clipped_surrogate(log_ratio, adv, args, batch.loss_mask)
    metrics["approx_kl_old"] = masked_mean(-log_ratio, batch.loss_mask)
    return pg, metrics


@register_loss("ppo_clip", requires=("logp", "old_logp", "advantages"), args=ClipArgs)
def ppo_clip_loss(batch: TokenBatch, args: ClipArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate (Schulman et al., PPO, arXiv 1707.06347) with separate low/high clip (DAPO clip-higher,
    arXiv 2503.14476) and optional dual clip for negative advantages (Ye et al. 2020, arXiv 1912.09729):
    ℓ_t = max(−A r_t, −A clip(r_t, 1−ε_low, 1+ε_high)); with dual clip c, ℓ_t ← min(ℓ_t, −c·A) where A < 0."""
    pg, metrics = ppo_clip_terms(batch, args)
    loss = batch.aggregate(pg)
    metrics["pg_loss"] = float(loss.detach())
    return loss, metrics


@register_loss("gspo", requires=("logp", "old_logp", "advantages"), args=ClipArgs)
def gspo_loss(batch: TokenBatch, args: ClipArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """GSPO (Zheng et al., Group Sequence Policy Optimization, arXiv 2507.18071), token form:
    log s_{i,t} = sg[(1/|y_i|) Σ_t (log π − log π_old)] + log π_t − sg[log π_t], clipped like PPO (paper ε ≈ 3e-4/4e-4);
    log s is clamped at 10 as verl does."""
    mask = batch.loss_mask.to(batch.logp.dtype)
    seq_log_ratio = ((batch.logp - batch.old_logp) * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
    log_ratio = seq_log_ratio.detach().unsqueeze(-1) + batch.logp - batch.logp.detach()
    pg, metrics = clipped_surrogate(log_ratio.clamp(max=10.0), token_advantages(batch), args, batch.loss_mask)
    return batch.aggregate(pg), metrics


@register_loss("cispo", requires=("logp", "old_logp", "advantages"), args=CispoArgs)
def cispo_loss(batch: TokenBatch, args: CispoArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """CISPO (MiniMax-M1, arXiv 2506.13585): ℓ_t = −sg[min(r_t, 1+ε_high)]·A_t·log π_t — the importance weight is
    clipped and detached, so no token's gradient is ever zeroed."""
    adv = token_advantages(batch)
    ratio = torch.exp((batch.logp - batch.old_logp).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))
    weight = ratio.clamp(max=1.0 + args.clip_high).detach()
    pg = -weight * adv * batch.logp
    metrics = {"clipfrac": masked_mean((ratio > 1.0 + args.clip_high).float(), batch.loss_mask)}
    return batch.aggregate(pg), metrics
