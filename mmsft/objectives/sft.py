"""Supervised objectives over response tokens.

Both are written once over :class:`TokenBatch` and so train text, image, video and action-token models alike.
"""

from __future__ import annotations

from typing import Any

import torch

from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.registry import register_loss


def _weights(batch: TokenBatch) -> torch.Tensor | float:
    """Per-token weights from the data (``token_weights`` / ``weight`` in a JSONL row), else 1."""
    return batch.token_weights if batch.token_weights is not None else 1.0


def _metrics(batch: TokenBatch) -> dict[str, float]:
    mask = batch.loss_mask.to(batch.logp.dtype)
    tokens = mask.sum().clamp(min=1.0)
    nll = -(batch.logp.detach() * mask).sum() / tokens
    prob = (batch.logp.detach().exp() * mask).sum() / tokens
    return {"nll": float(nll), "target_prob": float(prob), "tokens": float(mask.sum())}


@register_loss("sft", requires=("logp",))
def sft_loss(batch: TokenBatch, args: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy on the response tokens, with optional per-token weights.

    ℓ_t = −w_t · log π(y_t | x, y_<t)  (maximum likelihood; weights cover TL-Training, FAIT, token masks).
    Aggregated with ``objective.loss_agg_mode`` (default token-mean over the whole optimizer step).
    """
    per_token = -_weights(batch) * batch.logp
    loss = batch.aggregate(per_token)
    return loss, _metrics(batch)


@register_loss("dft", requires=("logp",))
def dft_loss(batch: TokenBatch, args: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Dynamic Fine-Tuning (Wu et al., "On the Generalization of SFT: A Reinforcement Learning Perspective with
    Reward Rectification", arXiv 2508.05629, ICLR 2026).

    ℓ_t = −sg(p_t) · log p_t with p_t = exp(log π(y_t)), computed in fp32; the gradient is −∇p_t, i.e. SFT's implicit
    reward 1[y=y*]/π is rectified to 1[y=y*]. Token-mean is the paper's aggregation and our default.
    """
    logp = batch.logp.float()
    per_token = -_weights(batch) * logp.detach().exp() * logp
    loss = batch.aggregate(per_token)
    return loss, _metrics(batch)
