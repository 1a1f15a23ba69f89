"""The ``prefix_rft`` stage (Huang et al., "Blending Supervised and Reinforcement Fine-Tuning with Prefix Sampling",
arXiv 2507.01679): the single-turn RL producer, except that ``num_prefixed`` members of every group continue a
demonstration prefix instead of starting from the prompt.

For prompt x with demonstration y* (the row's target), a prefixed member is y*_{1:L} + z, z ~ π_θ(· | x, y*_{1:L}),
L = ⌊c·|y*|⌋ (at most |y*| − 1 tokens, so the policy always writes the end), with the prefix fraction c decayed by
cosine from ``prefix_max`` to ``prefix_min`` over the run's optimizer steps. The reward scores the whole text
(prefix + continuation) and the member stays in its group, so advantages compare it with ordinary rollouts. Its loss
mask covers prefix and continuation; ``prefix_mask`` marks the prefix so the ``prefix_rft`` loss trains only the
high-entropy prefix tokens. Arguments come from the ``prefix_rft`` loss (``objective.args``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mmsft.models.adapters import Encoded
from mmsft.rewards import compute_rewards
from mmsft.rollout import Rollout, SamplingParams
from mmsft.train.rl_producer import Group, RLProducer, RL_FIELDS, soft_overlong_penalty
from mmsft.train.stage import StageContext, register_producer


class PrefixRFTProducer(RLProducer):
    provides = frozenset({*RL_FIELDS, "prefix_mask"})

    def __init__(self, ctx: StageContext, engine: Any = None) -> None:
        from mmsft.train.mix_producer import loss_args

        super().__init__(ctx, engine)
        self.args = loss_args(ctx.cfg)
        for name in ("prefix_max", "prefix_min", "num_prefixed"):
            if not hasattr(self.args, name):
                raise ValueError(f"stage 'prefix_rft' reads objective.args.{name}; objective "
                                 f"{ctx.cfg.objective.name!r} has no such argument (use objective.name=prefix_rft)")
        cfg = ctx.cfg
        self.total_steps = cfg.train.max_steps or max(1, math.ceil(cfg.train.epochs * self.steps_per_epoch()))
        self._demos: dict[int, torch.Tensor] = {}

    def prefix_fraction(self) -> float:
        """c at the current optimizer step: cosine from prefix_max to prefix_min over the run."""
        step = self.state["rollout_batches"] * self.builder.steps_per_rollout()
        progress = min(1.0, step / max(self.total_steps, 1))
        return self.args.prefix_min + (self.args.prefix_max - self.args.prefix_min) * 0.5 * (1 + math.cos(math.pi * progress))

    def _demo(self, index: int) -> torch.Tensor:
        if index not in self._demos:
            full = self.adapter.encode(self.samples[index], with_target=True)
            self._demos[index] = full.input_ids[full.loss_mask]
        return self._demos[index]

    def _sample_groups(self, indices: list[int], round_index: int) -> list[Group]:
        rl = self.cfg.rl
        size = rl.group_size
        prefixed = min(self.args.num_prefixed, size)
        seed = self.cfg.train.seed * 1_000_003 + self.state["rollout_batches"] * 101 + round_index
        common = dict(max_new_tokens=self.max_new_tokens, temperature=rl.temperature, top_p=rl.top_p, top_k=rl.top_k,
                      stop_strings=tuple(s for s in rl.stop_strings.split(",") if s), vocab_subset=self.vocab_subset,
                      allow_stop=self.allow_stop)
        plain = (self.engine.generate([self._prompt(i) for i in indices], SamplingParams(n=size - prefixed, seed=seed,
                                                                                           **common))
                 if size > prefixed else [])
        fraction = self.prefix_fraction()
        heads, prompts = [], []
        for g, index in enumerate(indices):
            demo = self._demo(index)
            length = min(int(fraction * len(demo)), max(len(demo) - 1, 0))
            head = demo[:length]
            prompt = self._prompt(index)
            for _ in range(prefixed):
                heads.append((g, head))
                prompts.append(Encoded(prompt.sample_id, torch.cat([prompt.input_ids, head]),
                                       torch.zeros(len(prompt) + length, dtype=torch.bool), prompt.mm))
        continued = (self.engine.generate(prompts, SamplingParams(n=1, seed=seed + 7_919, **common))
                     if prompts else [])
        groups: list[list[Rollout]] = [[] for _ in indices]
        for r in plain:
            r.extras["fields"] = {"prefix_mask": torch.zeros(len(r.completion_ids))}
            groups[r.prompt_index].append(r)
        for (g, head), r in zip(heads, continued):
            ids = torch.cat([head, r.completion_ids])
            groups[g].append(Rollout(g, self._prompt(indices[g]), ids, torch.cat([torch.zeros(len(head)), r.sampler_logp]),
                                     self.adapter.decode(head) + r.text, r.truncated,
                                     {"fields": {"prefix_mask": torch.cat([torch.ones(len(head)),
                                                                           torch.zeros(len(r.completion_ids))])}}))
        rollouts = [r for group in groups for r in group]
        samples = [self.samples[indices[r.prompt_index]] for r in rollouts]
        result = compute_rewards(self.rewards, self.weights, samples, [r.text for r in rollouts])
        totals, parts = result.total, result.parts
        for k, r in enumerate(rollouts):
            totals[k] += soft_overlong_penalty(len(r.completion_ids), rl.max_new_tokens, self.overlong_cache,
                                               rl.soft_overlong_penalty)
        self._metrics_prefix = {"prefix_rft/fraction": fraction}
        out = []
        for g, index in enumerate(indices):
            members = slice(g * size, (g + 1) * size)
            out.append((index, rollouts[members], totals[members], {n: v[members] for n, v in parts.items()}))
        return out

    def pop_metrics(self) -> dict[str, float]:
        metrics = super().pop_metrics()
        metrics.update(getattr(self, "_metrics_prefix", {}))
        return metrics


@register_producer("prefix_rft", provides=tuple(PrefixRFTProducer.provides))
def prefix_rft_producer(ctx: StageContext) -> PrefixRFTProducer:
    """RL on a dataset with demonstrations: groups mix ordinary rollouts with demonstration-prefixed ones."""
    return PrefixRFTProducer(ctx)
