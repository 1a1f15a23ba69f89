"""The ``mix`` and ``gkd`` producers. ``mix``: every optimizer step carries on-policy rollouts *and* expert demonstrations, marked by a
per-row ``expert_mask`` (1 = expert row, 0 = rollout) — what SFT–RL hybrids such as CHORD (arXiv 2508.11408) train on.

Rollout micro-batches come from the single-turn RL producer (or any on-policy producer); the expert micro-batch is
drawn from ``mix.expert_path`` in a seeded, checkpointed order (``mix.expert_per_step`` rows per step). Expert rows carry
zero advantages and their own log-probs as ``old_logp`` (so any on-policy term is exactly zero on them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mmsft.data.loaders import load_dataset
from mmsft.data.schema import DataError
from mmsft.models.adapters import Encoded, ModelBatch
from mmsft.train.producers import SFT_FIELDS, SFTProducer, notify_step
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


class GKDProducer:
    """The ``gkd`` stage (Agarwal et al., arXiv 2306.13649): each optimizer step draws dataset samples like the SFT
    producer; each sequence is replaced, with probability λ (the loss's ``lmbda``; seeded per step), by the student's
    own completion of its prompt (``rl.max_new_tokens``, ``rl.temperature``, ``rl.top_p``/``top_k``). Every row then
    gets the teacher's (and, if needed, the reference's) top-k support, so the distribution-matching loss (``gkd``,
    ``distill_topk_kl``) runs on the mixture. An on-policy stage: student and teacher log-probs are taken at
    ``rl.temperature``, as TRL's GKDTrainer applies its temperature to both."""

    provides = frozenset({*SFT_FIELDS, "old_logp"})

    def __init__(self, ctx: StageContext, engine: Any = None) -> None:
        from mmsft.rollout import HFGenerateEngine

        cfg = ctx.cfg
        self.ctx, self.cfg = ctx, cfg
        self.lmbda = float(getattr(loss_args(cfg), "lmbda", 0.0))
        self.data = SFTProducer(ctx.samples, ctx.adapter, cfg.train.micro_batch_size, cfg.train.grad_accum,
                                cfg.train.seed, cfg.data.shuffle, ctx.rank, ctx.world_size, scorers=ctx.scorers,
                                needed=ctx.needed, topk=support_k(cfg))
        self.engine = engine or HFGenerateEngine(lambda: ctx.policy.model, ctx.adapter,
                                                 batch_size=cfg.rl.generation_batch_size)
        self.student_rows, self.rows = 0, 0

    def _student(self, samples: list[Any], step: int) -> list[Encoded]:
        from mmsft.rollout import SamplingParams

        rl = self.cfg.rl
        vocab_subset, allow_stop = self.ctx.adapter.sampling_constraints()  # a VLA samples only action bins
        params = SamplingParams(n=1, max_new_tokens=rl.max_new_tokens, temperature=rl.temperature, top_p=rl.top_p,
                                top_k=rl.top_k, stop_strings=tuple(s for s in rl.stop_strings.split(",") if s),
                                seed=self.cfg.train.seed * 1_000_003 + step, vocab_subset=vocab_subset,
                                allow_stop=allow_stop)
        prompts = [self.ctx.adapter.encode(s, with_target=False) for s in samples]
        return [r.as_encoded() for r in self.engine.generate(prompts, params)]

    def next_step(self) -> list[ModelBatch]:
        step = self.data.state.steps
        notify_step(self.ctx.scorers, step)
        drawn = [self.data._draw() for _ in range(self.data.samples_per_step)]
        coin = np.random.default_rng([self.cfg.train.seed, 0x6B64, step]).random(len(drawn)) < self.lmbda
        picked = [i for i, on in enumerate(coin) if on]
        if picked:
            student = self._student([self.data.samples[drawn[i][0]] for i in picked], step)
            for i, encoded in zip(picked, student):
                drawn[i] = (drawn[i][0], encoded)
        self.student_rows += len(picked)
        self.rows += len(drawn)
        mine = drawn[self.ctx.rank::self.ctx.world_size]
        micro = self.data.micro_batch_size
        batches = []
        for start in range(0, len(mine), micro):
            chunk = [e for _, e in mine[start:start + micro]]
            batch = self.data._with_weights(self.ctx.adapter.collate(chunk), chunk)
            attach_scored_fields(batch, self.ctx.scorers, self.ctx.needed, self.data.topk)
            batches.append(batch)
        self.data.state.steps += 1
        return batches

    def pop_metrics(self) -> dict[str, float]:
        metrics = self.data.pop_metrics()
        metrics["gkd/student_frac"] = self.student_rows / max(self.rows, 1)
        self.student_rows, self.rows = 0, 0
        return metrics

    def at_rollout_boundary(self) -> bool:
        return True

    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch()

    def state_dict(self) -> dict[str, Any]:
        return self.data.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data.load_state_dict(state)


def loss_args(cfg: Any) -> Any:
    """The configured loss's own argument dataclass."""
    from mmsft.config import build_args
    from mmsft.objectives import get_loss

    return build_args(get_loss(cfg.objective.name), cfg.objective.args, "objective.args")


@register_producer("gkd", provides=tuple(GKDProducer.provides))
def gkd_producer(ctx: StageContext) -> GKDProducer:
    """GKD: dataset targets mixed per sequence with the student's own samples (λ = objective.args.lmbda), scored by
    the teacher (rl.teacher) on a top-k support."""
    if not ctx.cfg.rl.teacher:
        raise ValueError("stage 'gkd' needs rl.teacher (a model folder, 'package.module:function' or a routing file)")
    return GKDProducer(ctx)


from mmsft.train import prefix_producer as _prefix_producer  # noqa: E402,F401  (registers the prefix_rft stage)
