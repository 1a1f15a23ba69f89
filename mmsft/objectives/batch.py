"""The only thing objectives see: token tensors, never pixels, frames or robot joints.

Every tensor is aligned with ``input_ids``: ``logp[b, t]`` is ``log π(input_ids[b, t] | input_ids[b, :t])`` and
``loss_mask[b, t]`` is 1 where token ``t`` is a supervised response (or action) token.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch


@dataclass(frozen=True)
class StepNormalizer:
    """Counts over the *whole optimizer step* (all micro-batches, all data-parallel ranks).

    Aggregation divides by these, never by per-micro-batch counts, so a step split into 1×8 or 8×1 micro-batches
    gives the same loss and the same gradients (per-micro-batch normalisation silently turns token-mean into a
    weighted sequence mean). ``world_size`` undoes DDP's gradient averaging.
    """

    num_tokens: float
    num_seqs: float
    max_len: float
    world_size: int = 1

    @staticmethod
    def from_mask(mask: torch.Tensor, max_len: float | None = None) -> "StepNormalizer":
        """Counts of one batch alone (used when the batch *is* the whole step)."""
        lengths = mask.sum(-1)
        return StepNormalizer(
            num_tokens=float(lengths.sum().item()),
            num_seqs=float((lengths > 0).sum().item()),
            max_len=float(max_len if max_len is not None else lengths.max().item() if lengths.numel() else 0.0),
        )

    @staticmethod
    def combine(masks: list[torch.Tensor], max_len: float | None = None, world_size: int = 1) -> "StepNormalizer":
        """Counts over several micro-batch masks (one optimizer step)."""
        parts = [StepNormalizer.from_mask(m) for m in masks]
        return StepNormalizer(
            num_tokens=sum(p.num_tokens for p in parts),
            num_seqs=sum(p.num_seqs for p in parts),
            max_len=float(max_len) if max_len is not None else max((p.max_len for p in parts), default=0.0),
            world_size=world_size,
        )


@dataclass
class TokenBatch:
    """Token-level view of a micro-batch; optional fields are filled only when an objective requires them."""

    logp: torch.Tensor
    loss_mask: torch.Tensor
    normalizer: StepNormalizer | None = None
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    teacher_logp: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    token_weights: torch.Tensor | None = None
    expert_mask: torch.Tensor | None = None
    group_id: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    teacher_dist: torch.Tensor | None = None  # (B, T, V_sub) teacher log-probs over a restricted vocabulary
    logp_dist: torch.Tensor | None = None  # (B, T, V_sub) policy log-probs over the same restricted vocabulary
    support_ids: torch.Tensor | None = None  # (B, T, K) token ids (a scorer's top-k, or all K = V ids) per position
    logp_support: torch.Tensor | None = None  # (B, T, K) policy log-probs at support_ids (differentiable)
    ref_support_logp: torch.Tensor | None = None  # (B, T, K) reference log-probs at support_ids
    teacher_support_logp: torch.Tensor | None = None  # (B, T, K) teacher log-probs at support_ids
    ref_score: torch.Tensor | None = None  # (B,) an offline per-sequence reference score (PoFT's r̄)
    prefix_mask: torch.Tensor | None = None  # (B, T) 1 on demonstration-prefix tokens of a rollout (Prefix-RFT)
    policy_argmax: torch.Tensor | None = None  # (B, T) the current policy's greedy guess of each supervised token (IFT)
    values: torch.Tensor | None = None  # (B, T) the critic's V(s_t) from the policy pass (actor-critic, SRPPO)
    old_values: torch.Tensor | None = None  # (B, T) V_old(s_t) scored once per rollout batch
    returns: torch.Tensor | None = None  # (B, T) GAE returns G_t = Â_t + V_old(s_t)
    agg_mode: str = "token-mean"  # objective.loss_agg_mode; see :func:`mmsft.objectives.aggregation.agg_loss`
    step: int = 0  # global optimizer step (0-based) — step-aware schedules such as CHORD's μ read it
    total_steps: int = 1
    row_normalizers: dict = field(default_factory=dict)  # "expert" / "policy": step counts over those rows only
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.logp.dim() != 2:
            raise ValueError(f"TokenBatch.logp must be (B, T), got shape {tuple(self.logp.shape)}")
        if self.loss_mask.shape != self.logp.shape:
            raise ValueError(f"TokenBatch.loss_mask shape {tuple(self.loss_mask.shape)} != logp shape {tuple(self.logp.shape)}")
        for name in ("old_logp", "ref_logp", "teacher_logp", "token_weights", "entropy", "prefix_mask", "values",
                     "old_values", "returns"):
            value = getattr(self, name)
            if value is not None and value.shape != self.logp.shape:
                raise ValueError(f"TokenBatch.{name} shape {tuple(value.shape)} != logp shape {tuple(self.logp.shape)}")
        support = [(n, getattr(self, n)) for n in ("support_ids", "logp_support", "ref_support_logp",
                                                   "teacher_support_logp") if getattr(self, n) is not None]
        for name, value in support:
            if value.dim() != 3 or value.shape[:2] != self.logp.shape or value.shape != support[0][1].shape:
                raise ValueError(f"TokenBatch.{name} shape {tuple(value.shape)} must be (B, T, K) with (B, T) = "
                                 f"{tuple(self.logp.shape)} and K shared by every support field")

    def aggregate(self, values: torch.Tensor, mask: torch.Tensor | None = None,
                  normalizer: StepNormalizer | None = None) -> torch.Tensor:
        """``agg_loss`` of a per-token tensor with this batch's mode and step normalizer (or the given ones)."""
        from mmsft.objectives.aggregation import agg_loss

        return agg_loss(values, self.loss_mask if mask is None else mask, self.agg_mode,
                        self.normalizer if normalizer is None else normalizer)

    def require(self, *names: str) -> None:
        """Raise a clear error if a field an objective needs was not computed."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"objective needs TokenBatch fields {missing}, which were not provided")

    def select(self, rows: torch.Tensor | slice) -> "TokenBatch":
        """Rows of every per-sequence tensor (used to split a batch into micro-batches)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value[rows] if isinstance(value, torch.Tensor) else value
        return replace(self, **out)
