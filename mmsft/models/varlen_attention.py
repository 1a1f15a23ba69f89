"""Padding-free attention for packed rows: attention runs per sample, never over the whole packed row.

A packed batch (:meth:`mmsft.models.adapters.text.TextAdapter.pack`) puts a micro-batch's samples end to end in one
row, with ``position_ids`` restarting at each sample and the sample boundaries as ``cu_seq_lens_q`` / ``cu_seq_lens_k``
(cumulative lengths, the convention of FlashAttention's varlen kernels, Dao 2023, arXiv 2307.08691; padding-free
training as in Kundu et al. 2024, arXiv 2407.09105). transformers' SDPA path already gets packing *right* — it builds a
block-diagonal mask from the position ids — but it computes attention over the whole row: N² scores for N packed
tokens instead of Σ Lᵢ², i.e. 4× the attention work for four equal samples, which on CPU can cost more than the
padding it removes. This attention implementation (registered as :data:`NAME`) runs causal SDPA once per sample
when the boundaries are given and falls back to transformers' SDPA otherwise (padded batches, generation with a KV
cache), so a model switched to it behaves exactly as with ``sdpa`` everywhere else.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

NAME = "mmsft_varlen"


def _varlen_forward(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                    is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    bounds = kwargs.get("cu_seq_lens_q")
    n = query.shape[2]
    if (bounds is None or query.shape[0] != 1 or key.shape[2] != n or int(bounds[-1]) != n
            or not getattr(module, "is_causal", True)):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    cuts = [int(c) for c in bounds.tolist()]
    parts = [F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], dropout_p=dropout,
                                            scale=scaling, is_causal=True)
             for s, e in zip(cuts[:-1], cuts[1:]) if e > s]
    out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Register :data:`NAME` with transformers (attention function + SDPA's mask builder); idempotent."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, _varlen_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)


def enable(model: Any) -> bool:
    """Switch ``model`` (a HF model, possibly peft-wrapped) from ``sdpa`` to :data:`NAME`; returns whether it did.
    Models on another implementation (eager, flash) are left alone: their packed path is transformers' own."""
    from mmsft.models.policy import unwrap_hf_model

    base = unwrap_hf_model(model)
    if getattr(base.config, "_attn_implementation", None) not in ("sdpa", NAME):
        return False
    register()
    base.set_attn_implementation(NAME)
    return True


def cumulative_lengths(lengths: list[int]) -> torch.Tensor:
    """``[0, L0, L0+L1, ...]`` as int32 (FlashAttention's ``cu_seqlens``)."""
    out = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    out[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int32), 0)
    return out
