"""The ``mix`` producer: every optimizer step carries on-policy rollouts *and* expert demonstrations, marked by a
per-row ``expert_mask`` (1 = expert row, 0 = rollout) — what SFT–RL hybrids such as CHORD (arXiv 2508.11408) train on.

Rollout micro-batches come from the single-turn RL producer (or any on-policy producer); the expert micro-batch is
drawn from ``mix.expert_path`` in a seeded, checkpointed order (``mix.expert_per_step`` rows per step). Expert rows carry
zero advantages and their own log-probs as ``old_logp`` (so any on-policy term is exactly zero on them).
"""

from __future__ import annotations

from typing import Any

import torch

from mmsft.data.loaders import load_dataset
from mmsft.data.schema import DataError
from mmsft.models.adapters import ModelBatch
from mmsft.train.producers import SFTProducer
from mmsft.train.rl_producer import RL_FIELDS, RLProducer
from mmsft.train.scored_fields import SCORED_FIELDS, attach_scored_fields, support_k
from mmsft.train.stage import StageContext, register_producer


class MixProducer:
    provides = frozenset({*RL_FIELDS, "expert_mask", "token_weights"})

    def __init__(self, ctx: StageContext, on_policy: Any) -> None:
        cfg = ctx.cfg
        if not cfg.mix.expert_path:
            raise DataError("stage 'mix' needs mix.expert_path: a JSONL of expert demonstrations (mmsft schema)")
        experts = load_dataset(cfg.mix.expert_path)
        self.on_policy, self.scorers, self.topk = on_policy, ctx.scorers, support_k(cfg)
        self.expert = SFTProducer(experts, ctx.adapter, micro_batch_size=cfg.mix.expert_per_step, grad_accum=1,
                                  seed=cfg.train.seed + 1, shuffle=True, rank=ctx.rank, world_size=ctx.world_size)

    def next_step(self) -> list[ModelBatch]:
        rollouts = self.on_policy.next_step()
        for batch in rollouts:
            batch.fields["expert_mask"] = torch.zeros(len(batch.sample_ids))
        experts = self.expert.next_step()
        for batch in experts:
            rows = len(batch.sample_ids)
            zeros = torch.zeros(batch.loss_mask.shape)
            batch.fields.update({"expert_mask": torch.ones(rows), "advantages": zeros, "old_logp": zeros.clone(),
                                 "group_id": torch.full((rows,), -1, dtype=torch.long)})
            # the same scored per-token fields as every rollout micro-batch of the step (reference, teacher, support)
            wanted = {n for n in SCORED_FIELDS if n in rollouts[0].fields}
            attach_scored_fields(batch, self.scorers, wanted, self.topk)
        return rollouts + experts

    def pop_metrics(self) -> dict[str, float]:
        metrics = self.on_policy.pop_metrics()
        metrics.update({f"expert/{k.split('/', 1)[-1]}": v for k, v in self.expert.pop_metrics().items()})
        return metrics

    def at_rollout_boundary(self) -> bool:
        return self.on_policy.at_rollout_boundary()

    def steps_per_epoch(self) -> int:
        return self.on_policy.steps_per_epoch()

    def state_dict(self) -> dict[str, Any]:
        return {"on_policy": self.on_policy.state_dict(), "expert": self.expert.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.on_policy.load_state_dict(state["on_policy"])
        self.expert.load_state_dict(state["expert"])


@register_producer("mix", provides=tuple(MixProducer.provides))
def mix_producer(ctx: StageContext) -> MixProducer:
    """Expert rows (mix.expert_path) + on-policy rollouts on the prompt dataset, with ``expert_mask``."""
    return MixProducer(ctx, RLProducer(ctx))
