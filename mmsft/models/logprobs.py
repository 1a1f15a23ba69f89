"""Response log-probs (and entropy) without materialising full-vocabulary logits for the whole batch.

The backbone runs once and returns hidden states (B, T, H). Only positions that predict a supervised token are
gathered (rows or positions without supervised tokens never reach the head), and the LM head + log-softmax run over
them in chunks of at most ``chunk_size`` tokens and at most 64 MB of fp32 logits (a 152k vocabulary gets chunks of
110 tokens). When a chunk's logits would exceed 32 MB, a plain linear head without a restricted vocabulary runs as
one fused autograd function (:mod:`mmsft.models.fused_head`: logits recomputed in backward, the weight gradient
accumulated in place), and any other head under activation checkpointing per chunk, so at most one chunk's logits
exist at any time, in forward *and* backward (smaller chunks keep theirs: recomputing them would cost time and save
nothing). At a 152k vocabulary this holds the log-prob pass's peak memory to a small fraction of the full-logits
computation (benchmarks/logprob_memory.py; the same idea as Liger's fused linear cross-entropy, arXiv 2410.10989).
For a VLM prompt of 1,000 image tokens and a 20-token answer this skips 98 % of the head's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


_RECOMPUTE_ABOVE_BYTES = 32 * 2**20  # checkpoint a chunk when its fp32 logits would exceed 32 MB
_CHUNK_LOGITS_BYTES = 64 * 2**20  # a chunk's fp32 logits stay below 64 MB (large vocabularies get shorter chunks)


@dataclass
class LogProbs:
    """``logp[b, t] = log π(input_ids[b, t] | input_ids[b, :t])`` where ``loss_mask[b, t]``, else 0."""

    logp: torch.Tensor
    entropy: torch.Tensor | None = None
    dist: torch.Tensor | None = None  # (B, T, V_sub) log-probs over the restricted vocabulary, on demand
    extra: dict[str, torch.Tensor] | None = None  # token_fn outputs scattered to (B, T, ...), on demand


TokenFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def _chunk_logp(hidden: torch.Tensor, targets: torch.Tensor, head: nn.Module, temperature: float,
                softcap: float | None, vocab_subset: torch.Tensor | None, with_entropy: bool, with_dist: bool = False,
                token_fn: TokenFn | None = None, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    logits = head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    if vocab_subset is not None:
        logits = logits.index_select(-1, vocab_subset)
    if temperature != 1.0:
        logits = logits / temperature
    log_probs = F.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if with_entropy:
        entropy = -(log_probs.exp() * log_probs).sum(-1)
    else:
        entropy = picked.new_zeros(())
    extra = token_fn(log_probs, targets, rows, cols) if token_fn is not None else {}
    return picked, entropy, (log_probs if with_dist else picked.new_zeros(())), extra


def head_logprobs(hidden: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor, head: nn.Module, *,
                  chunk_size: int = 1024, temperature: float = 1.0, softcap: float | None = None,
                  vocab_subset: torch.Tensor | None = None, with_entropy: bool = False,
                  with_dist: bool = False, token_fn: TokenFn | None = None) -> LogProbs:
    """Log-probs of ``input_ids`` at ``loss_mask`` positions from backbone hidden states (B, T, H).

    ``vocab_subset`` restricts the softmax to those ids (e.g. a VLA's 256 action bins). A supervised target outside
    it has restricted probability 0 (log-prob −inf, no gradient): that is a bug upstream — rollouts are sampled from
    the subset and adapters leave non-action tokens unsupervised — so it raises, naming the token and position.
    Gradients flow into ``hidden`` and the head. ``with_dist`` also returns the full log-softmax over ``vocab_subset``
    at the supervised positions (B, T, V_sub) — only for small restricted vocabularies (exact KL).
    """
    if with_dist and vocab_subset is None:
        raise ValueError("with_dist needs a vocab_subset: full-vocabulary distributions are never materialised")
    if hidden.shape[:2] != input_ids.shape or loss_mask.shape != input_ids.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)}, input_ids {tuple(input_ids.shape)} and loss_mask "
                         f"{tuple(loss_mask.shape)} must agree on (B, T)")
    if bool(loss_mask[:, 0].any()):
        raise ValueError("loss_mask marks position 0, which has no preceding context to predict it from")
    rows, cols = loss_mask.nonzero(as_tuple=True)
    targets = input_ids[rows, cols]
    if vocab_subset is not None:
        lookup = torch.full((int(vocab_subset.max()) + 1,), -1, dtype=torch.long, device=input_ids.device)
        lookup[vocab_subset] = torch.arange(len(vocab_subset), device=input_ids.device)
        outside = (targets >= len(lookup)) | (lookup[targets.clamp(max=len(lookup) - 1)] < 0)
        if bool(outside.any()):
            k = int(outside.nonzero()[0, 0])
            raise ValueError(f"supervised token id {int(targets[k])} at (row {int(rows[k])}, position {int(cols[k])}) "
                             f"lies outside vocab_subset ({len(vocab_subset)} ids): its restricted probability is 0. "
                             "Only tokens sampled from the subset may be under the loss mask — constrain generation "
                             "with the adapter's sampling_constraints() and leave stop tokens unsupervised")
        targets = lookup[targets]
    source = hidden[rows, cols - 1]
    vocab = len(vocab_subset) if vocab_subset is not None else getattr(head, "out_features", None) or hidden.shape[-1]
    chunk_size = max(1, min(chunk_size, _CHUNK_LOGITS_BYTES // (4 * vocab)))
    recompute = chunk_size * vocab * 4 > _RECOMPUTE_ABOVE_BYTES  # small chunks: keeping logits is cheaper
    picked_parts, entropy_parts, dist_parts, extra_parts = [], [], [], []
    fused = (recompute and vocab_subset is None and not with_dist and token_fn is None
             and type(head) is nn.Linear and source.shape[0] > 0)
    if fused:  # large vocabulary: one autograd function, one chunk of logits at a time (mmsft.models.fused_head)
        from mmsft.models.fused_head import FusedHeadLogprob

        picked, ent = FusedHeadLogprob.apply(source, head.weight, head.bias, targets, temperature, softcap,
                                             chunk_size, with_entropy)
        picked_parts, entropy_parts = [picked], [ent if with_entropy else picked.new_zeros(())]
    starts = range(0, source.shape[0], chunk_size) or ([0] if token_fn is not None else [])  # token_fn names outputs
    starts = [] if fused else starts
    for start in starts:
        part = slice(start, start + chunk_size)
        h, y = source[part], targets[part]
        args = (h, y, head, temperature, softcap, vocab_subset, with_entropy, with_dist, token_fn, rows[part], cols[part])
        if recompute and torch.is_grad_enabled() and h.requires_grad:
            picked, ent, dist, extra = checkpoint(_chunk_logp, *args, use_reentrant=False)
        else:
            picked, ent, dist, extra = _chunk_logp(*args)
        picked_parts.append(picked)
        entropy_parts.append(ent)
        dist_parts.append(dist)
        extra_parts.append(extra)
    logp = hidden.new_zeros(input_ids.shape, dtype=torch.float32)
    if picked_parts:
        logp = logp.index_put((rows, cols), torch.cat(picked_parts))
    elif hidden.requires_grad:  # nothing supervised (e.g. every completion masked): keep a zero-gradient graph
        logp = logp + 0.0 * hidden.sum()
    entropy = None
    if with_entropy:
        entropy = hidden.new_zeros(input_ids.shape, dtype=torch.float32)
        if entropy_parts:
            entropy = entropy.index_put((rows, cols), torch.cat(entropy_parts))
    dist = None
    if with_dist:
        dist = hidden.new_zeros((*input_ids.shape, len(vocab_subset)), dtype=torch.float32)
        if dist_parts:
            dist = dist.index_put((rows, cols), torch.cat(dist_parts))
    extra = None
    if token_fn is not None:
        extra = {}
        for name in (extra_parts[0] if extra_parts else {}):
            values = torch.cat([part[name] for part in extra_parts])
            extra[name] = values.new_zeros((*input_ids.shape, *values.shape[1:])).index_put((rows, cols), values)
    return LogProbs(logp=logp, entropy=entropy, dist=dist, extra=extra)


def naive_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Reference implementation from full logits (B, T, V); used by tests to check :func:`head_logprobs`."""
    log_probs = F.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = log_probs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    out = torch.zeros(input_ids.shape, dtype=torch.float32, device=logits.device)
    out[:, 1:] = picked
    return out * loss_mask.to(out.dtype)
