"""Policy-gradient losses over :class:`TokenBatch` (registry ``LOSSES``), with optional KL-to-reference and entropy
terms, all aggregated by :func:`agg_loss` over the whole optimizer step.

Config fields read (``ObjectiveConfig``): ``clip_low``, ``clip_high``, ``dual_clip``, ``kl_coef``, ``kl_estimator``,
``kl_placement``, ``entropy_coef``, ``loss_agg_mode``.
"""

from __future__ import annotations

from typing import Any

import torch

from mmsft.objectives.aggregation import agg_loss
from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.registry import get_kl, register_loss

_LOG_RATIO_CLAMP = 20.0


def extra_fields(cfg: Any) -> set[str]:
    """TokenBatch fields the configured KL / entropy terms need on top of a loss's own ``requires``."""
    fields = set()
    if getattr(cfg, "kl_coef", 0.0) > 0 and getattr(cfg, "kl_placement", "loss") == "loss":
        fields.add("ref_logp")
    if getattr(cfg, "entropy_coef", 0.0) > 0:
        fields.add("entropy")
    return fields


def _token_advantages(batch: TokenBatch) -> torch.Tensor:
    adv = batch.advantages
    return adv.unsqueeze(-1).expand_as(batch.logp) if adv.dim() == 1 else adv


def _regularised(pg: torch.Tensor, batch: TokenBatch, cfg: Any, metrics: dict[str, float]) -> torch.Tensor:
    mask = batch.loss_mask
    loss = agg_loss(pg, mask, cfg.loss_agg_mode, batch.normalizer)
    if cfg.kl_coef > 0 and cfg.kl_placement == "loss":
        batch.require("ref_logp")
        kl = get_kl(cfg.kl_estimator).fn(batch.logp, batch.ref_logp)
        loss = loss + cfg.kl_coef * agg_loss(kl, mask, cfg.loss_agg_mode, batch.normalizer)
        metrics["kl"] = _masked_mean(kl, mask)
    if cfg.entropy_coef > 0:
        batch.require("entropy")
        loss = loss - cfg.entropy_coef * agg_loss(batch.entropy, mask, cfg.loss_agg_mode, batch.normalizer)
    if batch.entropy is not None:
        metrics["entropy"] = _masked_mean(batch.entropy, mask)
    return loss


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.to(values.dtype)
    return float((values.detach() * m).sum() / m.sum().clamp(min=1.0))


def _clipped_surrogate(log_ratio: torch.Tensor, adv: torch.Tensor, cfg: Any, mask: torch.Tensor
                       ) -> tuple[torch.Tensor, dict[str, float]]:
    ratio = torch.exp(log_ratio.clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    pg = torch.maximum(unclipped, clipped)
    metrics = {"clipfrac": _masked_mean((clipped > unclipped).float(), mask)}
    if cfg.dual_clip > 0:
        dual = torch.minimum(pg, -cfg.dual_clip * adv)
        pg = torch.where(adv < 0, dual, pg)
    return pg, metrics


@register_loss("ppo_clip", requires=("logp", "old_logp", "advantages"))
def ppo_clip_loss(batch: TokenBatch, cfg: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate (Schulman et al., PPO, arXiv 1707.06347) with separate low/high clip (DAPO clip-higher,
    arXiv 2503.14476) and optional dual clip for negative advantages (Ye et al. 2020, arXiv 1912.09729):
    ℓ_t = max(−A r_t, −A clip(r_t, 1−ε_low, 1+ε_high)); with dual clip c, ℓ_t ← min(ℓ_t, −c·A) where A < 0."""
    adv = _token_advantages(batch)
    log_ratio = batch.logp - batch.old_logp
    pg, metrics = _clipped_surrogate(log_ratio, adv, cfg, batch.loss_mask)
    metrics["approx_kl_old"] = _masked_mean(-log_ratio, batch.loss_mask)
    loss = _regularised(pg, batch, cfg, metrics)
    metrics["pg_loss"] = float(agg_loss(pg.detach(), batch.loss_mask, cfg.loss_agg_mode))
    return loss, metrics


@register_loss("gspo", requires=("logp", "old_logp", "advantages"))
def gspo_loss(batch: TokenBatch, cfg: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """GSPO (Zheng et al., Group Sequence Policy Optimization, arXiv 2507.18071), token form:
    log s_{i,t} = sg[(1/|y_i|) Σ_t (log π − log π_old)] + log π_t − sg[log π_t], clipped like PPO (paper ε ≈ 3e-4/4e-4);
    log s is clamped at 10 as verl does."""
    mask = batch.loss_mask.to(batch.logp.dtype)
    seq_log_ratio = ((batch.logp - batch.old_logp) * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
    log_ratio = seq_log_ratio.detach().unsqueeze(-1) + batch.logp - batch.logp.detach()
    pg, metrics = _clipped_surrogate(log_ratio.clamp(max=10.0), _token_advantages(batch), cfg, batch.loss_mask)
    loss = _regularised(pg, batch, cfg, metrics)
    return loss, metrics


@register_loss("cispo", requires=("logp", "old_logp", "advantages"))
def cispo_loss(batch: TokenBatch, cfg: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """CISPO (MiniMax-M1, arXiv 2506.13585): ℓ_t = −sg[min(r_t, 1+ε_high)]·A_t·log π_t — the importance weight is
    clipped and detached, so no token's gradient is ever zeroed."""
    adv = _token_advantages(batch)
    ratio = torch.exp((batch.logp - batch.old_logp).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))
    weight = ratio.clamp(max=1.0 + cfg.clip_high).detach()
    pg = -weight * adv * batch.logp
    metrics = {"clipfrac": _masked_mean((ratio > 1.0 + cfg.clip_high).float(), batch.loss_mask)}
    return _regularised(pg, batch, cfg, metrics), metrics
