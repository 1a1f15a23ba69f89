"""One aggregation function for every objective (verl ``agg_loss``; TRL ``loss_type``).

Modes (M = loss mask, L = per-token loss, counts from :class:`StepNormalizer` over the whole optimizer step):

* ``token-mean`` (DAPO, Yu et al. 2025, arXiv 2503.14476):   Σ M·L / Σ M
* ``seq-mean-token-mean`` (GRPO, Shao et al. 2024):           (1/B) Σ_i Σ_t M·L / Σ_t M
* ``seq-mean-token-sum`` (REINFORCE):                         (1/B) Σ_i Σ_t M·L
* ``seq-mean-token-sum-norm`` (Dr.GRPO, Liu et al. 2025, arXiv 2503.20783):   Σ M·L / (B · T_max)

Each micro-batch returns its *contribution*; the contributions of a step add up to the full-batch value, which makes
the result invariant to gradient accumulation and to the data-parallel size.
"""

from __future__ import annotations

import torch

from mmsft.objectives.batch import StepNormalizer

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def agg_loss(values: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean",
             normalizer: StepNormalizer | None = None) -> torch.Tensor:
    """Aggregate a (B, T) per-token loss over the masked tokens; see the module docstring for the modes."""
    if mode not in AGG_MODES:
        raise ValueError(f"unknown loss_agg_mode {mode!r}; expected one of {AGG_MODES}")
    mask = mask.to(values.dtype)
    norm = normalizer if normalizer is not None else StepNormalizer.from_mask(mask)
    masked = values * mask
    if mode == "token-mean":
        total = masked.sum() / max(norm.num_tokens, 1.0)
    elif mode == "seq-mean-token-mean":
        per_seq = masked.sum(-1) / mask.sum(-1).clamp(min=1.0)
        total = per_seq.sum() / max(norm.num_seqs, 1.0)
    elif mode == "seq-mean-token-sum":
        total = masked.sum() / max(norm.num_seqs, 1.0)
    else:
        total = masked.sum() / max(norm.num_seqs * norm.max_len, 1.0)
    return total * norm.world_size
