"""From scored rollouts to optimizer steps — shared by every on-policy producer (single-turn prompts, the agent loop
over environments, mixes).

Per rollout batch: overlong masking, old / reference / teacher log-probs only where something needs them (values a
producer precomputed, e.g. a callable teacher's scores recorded during the episode, are used as they are), KL in the
reward, the configured advantage estimator, and the ``ppo_epochs × mini_batches`` schedule of micro-batches whose
``fields`` carry the per-token tensors.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch

from mmsft.config import build_args
from mmsft.models.adapters import Encoded, ModelBatch
from mmsft.objectives import AdvantageInputs, get_advantage, get_kl
from mmsft.objectives.registry import TOKEN_BATCH_FIELDS
from mmsft.train.scored_fields import SUPPORT_FIELDS, attach_scored_fields, support_k
from mmsft.train.stage import StageContext


@dataclass
class ScoredSequence:
    """One training sequence of a rollout batch: tokens (loss mask on the policy's own tokens), reward and group."""

    encoded: Encoded
    reward: float
    group: int
    sample_id: str = ""
    sampler_logp: torch.Tensor | None = None  # (n policy tokens,) sampler log-probs, in order
    truncated: bool = False
    parts: dict[str, float] = field(default_factory=dict)
    fields: dict[str, torch.Tensor] = field(default_factory=dict)  # precomputed per-policy-token values


def scatter_to_mask(values: list[torch.Tensor], loss_mask: torch.Tensor) -> torch.Tensor:
    """Place each row's per-policy-token values at the positions of its loss mask: (B, T) or (B, T, V)."""
    trailing = tuple(values[0].shape[1:]) if values and values[0].dim() > 1 else ()
    out = torch.zeros((*loss_mask.shape, *trailing), dtype=torch.float32)
    for row, vector in enumerate(values):
        positions = loss_mask[row].nonzero(as_tuple=True)[0]
        out[row, positions] = vector[: len(positions)].float()
    return out


def gather_from_mask(tensor: torch.Tensor, loss_mask: torch.Tensor) -> list[torch.Tensor]:
    return [tensor[row][loss_mask[row]].detach().cpu() for row in range(len(loss_mask))]


def pad_rows(vectors: list[torch.Tensor]) -> torch.Tensor:
    width = max((len(v) for v in vectors), default=0)
    values = torch.zeros(len(vectors), width)
    for row, vector in enumerate(vectors):
        values[row, : len(vector)] = vector.float()
    return values


class RLStepBuilder:
    """Turns one rollout batch of :class:`ScoredSequence` into queued optimizer steps; see the module docstring."""

    def __init__(self, ctx: StageContext) -> None:
        cfg = ctx.cfg
        self.ctx, self.cfg, self.rl = ctx, cfg, cfg.rl
        self.advantage = get_advantage(cfg.rl.advantage)
        self.advantage_args = build_args(self.advantage, cfg.rl.advantage_args, "rl.advantage_args")
        kl = cfg.objective.kl
        self.kl_in_reward = kl.coef > 0 and kl.placement == "reward"
        adv_needs = set(self.advantage.requires)
        self.needs_old = (cfg.rl.ppo_epochs > 1 or cfg.rl.mini_batches > 1 or "old_logp" in adv_needs
                          or self.kl_in_reward)
        self.needs_ref = "ref_logp" in ctx.needed or self.kl_in_reward or "ref_logp" in adv_needs
        self.needs_values = "old_values" in adv_needs or "old_values" in ctx.needed  # a critic's V_old (SRPPO)
        self.needs_teacher = "teacher_logp" in adv_needs or "teacher_logp" in ctx.needed
        self.needs_teacher_dist = "teacher_dist" in ctx.needed
        self.support_k = support_k(cfg)  # top-k supports of distribution-matching losses (GKD, top-k KD)

    def build(self, seqs: list[ScoredSequence], stats: dict[str, float], batch_index: int) -> list[list[ModelBatch]]:
        if not seqs:
            raise ValueError("a rollout batch produced no sequences to train on")
        cfg, rl = self.cfg, self.rl
        encoded = [s.encoded for s in seqs]
        if rl.overlong_filter:
            masked = 0
            for e, s in zip(encoded, seqs):
                if s.truncated:
                    e.loss_mask = torch.zeros_like(e.loss_mask)
                    masked += 1
            stats["rollout/overlong_masked"] = float(masked)
        order = list(range(len(encoded)))[self.ctx.rank::self.ctx.world_size]
        micro = cfg.train.micro_batch_size
        chunks = [order[i:i + micro] for i in range(0, len(order), micro)]
        batches = [self.ctx.adapter.collate([encoded[i] for i in chunk]) for chunk in chunks]
        per_seq = self._score(seqs, chunks, batches, stats)
        rewards = torch.tensor([s.reward for s in seqs], dtype=torch.float32)
        group_id = torch.tensor([s.group for s in seqs], dtype=torch.long)
        lengths = [int(s.encoded.loss_mask.sum()) for s in seqs]
        token_mask = pad_rows([torch.ones(n) for n in lengths]) > 0
        inputs = AdvantageInputs(rewards=rewards, group_id=group_id, mask=token_mask)
        if per_seq.get("old_logp") is not None:
            inputs.old_logp = pad_rows(per_seq["old_logp"])
        if per_seq.get("teacher_logp") is not None:
            inputs.teacher_logp = pad_rows(per_seq["teacher_logp"])
        if per_seq.get("ref_logp") is not None:
            inputs.ref_logp = pad_rows(per_seq["ref_logp"])
        if per_seq.get("old_values") is not None:
            inputs.values = pad_rows(per_seq["old_values"])
        if self.kl_in_reward:
            old, ref = pad_rows(per_seq["old_logp"]), pad_rows(per_seq["ref_logp"])
            kl = get_kl(cfg.objective.kl.estimator).fn(old, ref)
            inputs.token_penalty = cfg.objective.kl.coef * kl * token_mask
            stats["kl_in_reward"] = float((kl * token_mask).sum() / token_mask.sum().clamp(min=1))
        advantages = self.advantage.fn(inputs, self.advantage_args)
        extra: dict[str, torch.Tensor] = {}
        if isinstance(advantages, dict):  # an estimator may also return per-token targets, e.g. GAE returns
            extra = {k: v for k, v in advantages.items() if k != "advantages"}
            unknown = sorted(set(extra) - TOKEN_BATCH_FIELDS)
            if "advantages" not in advantages or unknown:
                raise ValueError(f"advantage {rl.advantage!r} returned keys {sorted(advantages)}; expected "
                                 f"'advantages' plus TokenBatch fields (unknown: {unknown})")
            advantages = advantages["advantages"]
        passed = sorted({k for s in seqs for k in s.fields} & TOKEN_BATCH_FIELDS - set(per_seq))  # e.g. prefix_mask
        for chunk, batch in zip(chunks, batches):
            for name in passed:  # other per-policy-token fields a producer recorded (absent: zeros)
                batch.fields[name] = scatter_to_mask([seqs[i].fields.get(name, torch.zeros(lengths[i])) for i in chunk],
                                                     batch.loss_mask)
            attach_scored_fields(batch, self.ctx.scorers, self.ctx.needed, self.support_k, SUPPORT_FIELDS)
            batch.fields["advantages"] = scatter_to_mask([advantages[i][: lengths[i]] for i in chunk], batch.loss_mask)
            batch.fields["group_id"] = group_id[chunk]
            for name, values in extra.items():
                batch.fields[name] = scatter_to_mask([values[i][: lengths[i]] for i in chunk], batch.loss_mask)
            for name in ("old_logp", "ref_logp", "teacher_logp", "teacher_dist", "old_values"):
                wanted = name in self.ctx.needed or (name == "old_logp" and self.needs_old)
                if per_seq.get(name) is not None and wanted:
                    batch.fields[name] = scatter_to_mask([per_seq[name][i] for i in chunk], batch.loss_mask)
        return self._schedule(batches, batch_index)

    def _score(self, seqs: list[ScoredSequence], chunks: list[list[int]], batches: list[ModelBatch],
               stats: dict[str, float]) -> dict[str, list[torch.Tensor] | None]:
        """Per-sequence vectors of old / ref / teacher log-probs (the teacher distribution, a critic's old values)
        where needed."""
        started = time.perf_counter()
        scorers = self.ctx.scorers
        wanted = {"old_logp": (self.needs_old, scorers.old), "ref_logp": (self.needs_ref, scorers.ref),
                  "teacher_logp": (self.needs_teacher, scorers.teacher),
                  "teacher_dist": (self.needs_teacher_dist, scorers.teacher_dist),
                  "old_values": (self.needs_values, getattr(scorers, "value", None))}
        out: dict[str, list[torch.Tensor] | None] = {}
        for name, (needed, fn) in wanted.items():
            if not needed:
                out[name] = None
                continue
            if all(name in s.fields for s in seqs):  # precomputed during the rollout (e.g. an oracle teacher)
                out[name] = [s.fields[name] for s in seqs]
                continue
            if fn is None:
                raise ValueError(f"{name} is needed but no scorer was set up for it")
            values: list[torch.Tensor] = [torch.zeros(0)] * len(seqs)
            for chunk, batch in zip(chunks, batches):
                scored = fn(batch)
                for i, vec in zip(chunk, gather_from_mask(scored, batch.loss_mask)):
                    values[i] = vec
            # rows whose values were recorded during the rollout keep them (e.g. tasks routed to an oracle teacher)
            out[name] = [s.fields[name] if name in s.fields else v for s, v in zip(seqs, values)]
        stats["time/logprob_passes_s"] = time.perf_counter() - started
        return out

    def _schedule(self, batches: list[ModelBatch], batch_index: int) -> list[list[ModelBatch]]:
        rl = self.rl
        steps: list[list[ModelBatch]] = []
        rng = np.random.default_rng([self.cfg.train.seed, batch_index])
        for epoch in range(rl.ppo_epochs):
            order = list(range(len(batches))) if epoch == 0 else list(rng.permutation(len(batches)))
            for part in np.array_split(np.asarray(order), rl.mini_batches):
                if len(part):
                    steps.append([batches[i] for i in part])
        return steps

    def steps_per_rollout(self) -> int:
        return self.rl.ppo_epochs * self.rl.mini_batches


class QueuedRolloutProducer(ABC):
    """Producer protocol shared by on-policy producers: optimizer steps are served from a queue that ``_refill``
    fills one rollout batch at a time; checkpoints happen only when the queue is empty (a rollout-batch boundary), so a
    resumed run regenerates nothing twice."""

    _queue: list[list[ModelBatch]]
    _metrics: dict[str, float]

    @abstractmethod
    def _refill(self) -> None:
        """Collect one rollout batch and queue its optimizer steps in ``self._queue`` (metrics in ``self._metrics``)."""

    def next_step(self) -> list[ModelBatch]:
        if not self._queue:
            self._refill()
        return self._queue.pop(0)

    def pop_metrics(self) -> dict[str, float]:
        metrics, self._metrics = self._metrics, {}
        return metrics

    def at_rollout_boundary(self) -> bool:
        return not self._queue
