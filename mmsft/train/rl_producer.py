"""The single-turn RL producer: prompts → completions → rewards → (dynamic sampling) → :class:`RLStepBuilder`.

Per rollout batch: draw ``rl.prompts_per_step`` prompts, sample ``rl.group_size`` completions each, score them with the
configured rewards (registered names or ``module:function``; plus DAPO's soft overlong punishment), optionally drop
groups whose rewards have zero std and refill (up to ``rl.max_resample`` extra rounds, counted and logged), then
queue the optimizer steps. Prompts over ``data.max_length`` follow ``data.overlong`` (drop: skipped and counted as
``data/dropped_overlong``). Registered as the ``rl`` stage and, requiring a teacher, the ``distill`` stage.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from mmsft.config import reward_names
from mmsft.data.schema import DataError
from mmsft.models.adapters import Encoded, ModelBatch, OverlongSample
from mmsft.rewards import compute_rewards
from mmsft.rollout import HFGenerateEngine, Rollout, RolloutEngine, SamplingParams
from mmsft.train.rollout_batches import QueuedRolloutProducer, RLStepBuilder, ScoredSequence
from mmsft.train.stage import StageContext, register_producer

RL_FIELDS = ("old_logp", "ref_logp", "teacher_logp", "teacher_dist", "advantages", "group_id", "support_ids",
             "ref_support_logp", "teacher_support_logp", "old_values", "returns")


def soft_overlong_penalty(length: int, max_len: int, cache: int, penalty: float) -> float:
    """DAPO (arXiv 2503.14476) soft overlong punishment: 0 up to L_max − L_cache, then linear down to −penalty."""
    if cache <= 0 or length <= max_len - cache:
        return 0.0
    return -penalty * min(1.0, (length - (max_len - cache)) / cache)


Group = tuple[int, list[Rollout], list[float], dict[str, list[float]]]


class RLProducer(QueuedRolloutProducer):
    """Queues the optimizer steps of one rollout batch at a time; see the module docstring."""

    provides = frozenset(RL_FIELDS)

    def __init__(self, ctx: StageContext, engine: RolloutEngine | None = None) -> None:
        if not ctx.samples:
            raise DataError("the RL prompt dataset is empty")
        cfg, rl = ctx.cfg, ctx.cfg.rl
        self.ctx, self.cfg, self.samples, self.adapter = ctx, cfg, ctx.samples, ctx.adapter
        self.engine = engine or HFGenerateEngine(lambda: ctx.policy.model, ctx.adapter,
                                                 batch_size=rl.generation_batch_size)
        self.rewards = reward_names(cfg)
        self.weights = [float(w) for w in rl.reward_weights.split(",") if w.strip()] or None
        self.builder = RLStepBuilder(ctx)
        # Generation is constrained as the adapter declares: a VLA samples only action bins and no stop token, so a
        # completion is whole actions — rl.max_new_tokens rounded down to a multiple of the tokens per action.
        self.vocab_subset, self.allow_stop = ctx.adapter.sampling_constraints()
        self.max_new_tokens = rl.max_new_tokens
        per_action = getattr(ctx.adapter, "tokens_per_action", None)
        if not self.allow_stop and per_action:
            self.max_new_tokens = max(per_action, rl.max_new_tokens - rl.max_new_tokens % per_action)
        if not self.rewards and not (self.builder.needs_teacher or "teacher_support_logp" in ctx.needed):
            raise ValueError("rl.rewards is empty: name at least one reward (e.g. rl.rewards=cls_accuracy or "
                             "my_pkg.rewards:exact_match)")
        from mmsft.objectives.decoding import resolve_stop_ids

        self.stop_temperature_ids = resolve_stop_ids(ctx.adapter.tokenizer, rl.stop_temperature_tokens, ())
        self.overlong_cache = rl.max_new_tokens // 5 if rl.soft_overlong_cache < 0 else rl.soft_overlong_cache
        if self.overlong_cache >= rl.max_new_tokens:
            raise ValueError(f"rl.soft_overlong_cache ({self.overlong_cache}) must be smaller than rl.max_new_tokens "
                             f"({rl.max_new_tokens})")
        self.state: dict[str, Any] = {"epoch": 0, "cursor": 0, "rollout_batches": 0, "dropped_overlong": 0}
        self._order = self._permutation(0)
        self._prompt_cache: dict[int, Encoded] = {}
        self._queue: list[list[ModelBatch]] = []
        self._metrics: dict[str, float] = {}

    # ---- prompt order (checkpointed) -----------------------------------------------------------------------------
    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.cfg.train.seed, epoch]).permutation(len(self.samples))

    def _next_index(self) -> int:
        if self.state["cursor"] >= len(self._order):
            self.state["epoch"] += 1
            self.state["cursor"] = 0
            self._order = self._permutation(self.state["epoch"])
        index = int(self._order[self.state["cursor"]])
        self.state["cursor"] += 1
        return index

    def _next_prompts(self, count: int) -> list[int]:
        """``count`` prompt indices; prompts over data.max_length under the drop policy are skipped and counted."""
        out: list[int] = []
        skipped = 0
        while len(out) < count:
            index = self._next_index()
            try:
                self._prompt(index)
            except OverlongSample:
                skipped += 1
                self.state["dropped_overlong"] += 1
                if skipped > len(self.samples):
                    raise DataError("every RL prompt exceeds data.max_length under the drop policy; raise "
                                    "data.max_length") from None
                continue
            out.append(index)
        return out

    def _prompt(self, index: int) -> Encoded:
        if index not in self._prompt_cache:
            self._prompt_cache[index] = self.adapter.encode(self.samples[index], with_target=False)
        return self._prompt_cache[index]

    # ---- rollout phase -------------------------------------------------------------------------------------------
    def _sample_groups(self, indices: list[int], round_index: int) -> list[Group]:
        rl = self.cfg.rl
        params = SamplingParams(n=rl.group_size, max_new_tokens=self.max_new_tokens, temperature=rl.temperature,
                                top_p=rl.top_p, top_k=rl.top_k,
                                stop_strings=tuple(s for s in rl.stop_strings.split(",") if s),
                                seed=self.cfg.train.seed * 1_000_003 + self.state["rollout_batches"] * 101 + round_index,
                                vocab_subset=self.vocab_subset, allow_stop=self.allow_stop,
                                stop_temperature=rl.stop_temperature, stop_temperature_ids=self.stop_temperature_ids)
        rollouts = self.engine.generate([self._prompt(i) for i in indices], params)
        samples = [self.samples[indices[r.prompt_index]] for r in rollouts]
        texts = [r.text for r in rollouts]
        if self.rewards:
            result = compute_rewards(self.rewards, self.weights, samples, texts,
                                     completion_lengths=[len(r.completion_ids) for r in rollouts])
            totals, parts = result.total, result.parts
        else:
            totals, parts = [0.0] * len(rollouts), {}
        for k, r in enumerate(rollouts):
            totals[k] += soft_overlong_penalty(len(r.completion_ids), rl.max_new_tokens, self.overlong_cache,
                                               rl.soft_overlong_penalty)
        groups = []
        for g, index in enumerate(indices):
            members = slice(g * rl.group_size, (g + 1) * rl.group_size)
            groups.append((index, rollouts[members], totals[members], {n: v[members] for n, v in parts.items()}))
        return groups

    def _collect(self) -> tuple[list[Group], dict[str, float]]:
        rl = self.cfg.rl
        wanted = rl.prompts_per_step
        kept: list[Group] = []
        all_groups: list[Group] = []
        dropped, rounds = 0, 0
        while len(kept) < wanted:
            groups = self._sample_groups(self._next_prompts(wanted - len(kept)), rounds)
            all_groups.extend(groups)
            for group in groups:
                if rl.dynamic_sampling and rl.group_size > 1 and float(np.std(group[2])) == 0.0:
                    dropped += 1
                else:
                    kept.append(group)
            rounds += 1
            if not rl.dynamic_sampling or rounds > rl.max_resample:
                break
        stats = {"rollout/dropped_zero_std_groups": float(dropped), "rollout/generation_rounds": float(rounds),
                 "rollout/kept_groups": float(len(kept))}
        if not kept:  # every group had zero reward variance: train on them (no PG signal) rather than stall
            kept = all_groups[:wanted]
        stats.update(reward_metrics(all_groups))
        return kept[:wanted], stats

    # ---- from groups to optimizer steps -------------------------------------------------------------------------
    def _refill(self) -> None:
        started = time.perf_counter()
        groups, stats = self._collect()
        stats["time/generation_s"] = time.perf_counter() - started
        seqs = [ScoredSequence(encoded=r.as_encoded(), reward=total, group=gi, sample_id=self.samples[index].id,
                               sampler_logp=r.sampler_logp, truncated=r.truncated,
                               fields=dict(r.extras.get("fields", {})))
                for gi, (index, rollouts, totals, _) in enumerate(groups) for r, total in zip(rollouts, totals)]
        self._queue = self.builder.build(seqs, stats, self.state["rollout_batches"])
        self._write_completions(groups)
        self.state["rollout_batches"] += 1
        stats["data/dropped_overlong"] = float(self.state["dropped_overlong"])
        self._metrics = stats

    def _write_completions(self, groups: list[Group]) -> None:
        if self.cfg.rl.log_completions <= 0 or self.ctx.rank != 0:
            return
        folder = self.ctx.run_dir / "rollouts"
        folder.mkdir(parents=True, exist_ok=True)
        rows = [{"sample_id": self.samples[index].id, "answer": self.samples[index].answer, "completion": r.text,
                 "reward": total, "truncated": r.truncated}
                for index, rollouts, totals, _ in groups for r, total in zip(rollouts, totals)]
        with open(folder / f"batch-{self.state['rollout_batches']:06d}.jsonl", "w", encoding="utf-8") as handle:
            for row in rows[: self.cfg.rl.log_completions]:
                handle.write(json.dumps(row, default=str) + "\n")

    # ---- producer protocol -----------------------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        return max(1, len(self.samples) // self.cfg.rl.prompts_per_step) * self.builder.steps_per_rollout()

    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = {"dropped_overlong": 0, **state}
        self._order = self._permutation(self.state["epoch"])


def reward_metrics(groups: list[Group]) -> dict[str, float]:
    """Means of the total reward, each reward part, response length and truncation over a rollout batch."""
    totals = [v for g in groups for v in g[2]]
    stats = {"reward/total": float(np.mean(totals)),
             "rollout/response_length": float(np.mean([len(r.completion_ids) for g in groups for r in g[1]])),
             "rollout/truncated_frac": float(np.mean([r.truncated for g in groups for r in g[1]]))}
    names = sorted({name for g in groups for name in g[3]})
    for name in names:
        stats[f"reward/{name}"] = float(np.mean([v for g in groups for v in g[3].get(name, [])]))
    accuracy = [stats[f"reward/{n}"] for n in names if "accuracy" in n and "/" not in n]
    if accuracy:
        stats["train/accuracy"] = accuracy[0]
    return stats


@register_producer("rl", provides=RL_FIELDS)
def rl_producer(ctx: StageContext) -> RLProducer:
    """On-policy RL on a prompt dataset (GRPO family, on-policy distillation with a teacher)."""
    return RLProducer(ctx)


@register_producer("distill", provides=RL_FIELDS)
def distill_producer(ctx: StageContext) -> RLProducer:
    """On-policy distillation on a prompt dataset: the student samples, the teacher (rl.teacher) scores."""
    if not ctx.cfg.rl.teacher:
        raise ValueError("stage 'distill' needs rl.teacher (a model folder or 'package.module:function')")
    return RLProducer(ctx)
