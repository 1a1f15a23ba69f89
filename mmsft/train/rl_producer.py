"""The RL data producer: rollouts → rewards → (dynamic sampling) → advantages → PPO mini-batches.

Per rollout batch: draw ``rl.prompts_per_step`` prompts, sample ``rl.group_size`` completions each, score them with the
configured rewards (plus DAPO's soft overlong punishment), optionally drop groups whose rewards have zero std and
refill (up to ``rl.max_resample`` extra rounds, counted and logged), compute reference / teacher / old log-probs only
when something needs them, compute advantages, and queue ``ppo_epochs × mini_batches`` optimizer steps of
micro-batches whose ``fields`` carry the per-token tensors. The trainer consumes them exactly like SFT batches.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mmsft.config import RunConfig
from mmsft.data.schema import DataError, Sample
from mmsft.models.adapters import Encoded, ModalityAdapter, ModelBatch
from mmsft.objectives import AdvantageInputs, get_advantage, get_kl
from mmsft.rewards import compute_rewards
from mmsft.rollout import Rollout, RolloutEngine, SamplingParams

LogpFn = Callable[[ModelBatch], torch.Tensor]


def soft_overlong_penalty(length: int, max_len: int, cache: int, penalty: float) -> float:
    """DAPO (arXiv 2503.14476) soft overlong punishment: 0 up to L_max − L_cache, then linear down to −penalty."""
    if cache <= 0 or length <= max_len - cache:
        return 0.0
    return -penalty * min(1.0, (length - (max_len - cache)) / cache)


def scatter_to_mask(values: list[torch.Tensor], loss_mask: torch.Tensor) -> torch.Tensor:
    """Place each row's response values at the positions of its loss mask (B, T)."""
    out = torch.zeros(loss_mask.shape, dtype=torch.float32)
    for row, vector in enumerate(values):
        positions = loss_mask[row].nonzero(as_tuple=True)[0]
        out[row, positions] = vector[: len(positions)].float()
    return out


def gather_from_mask(tensor: torch.Tensor, loss_mask: torch.Tensor) -> list[torch.Tensor]:
    return [tensor[row][loss_mask[row]].detach().cpu() for row in range(len(loss_mask))]


def _pad(vectors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((len(v) for v in vectors), default=0)
    values = torch.zeros(len(vectors), width)
    mask = torch.zeros(len(vectors), width, dtype=torch.bool)
    for row, vector in enumerate(vectors):
        values[row, : len(vector)] = vector.float()
        mask[row, : len(vector)] = True
    return values, mask


class RLProducer:
    """Queues the optimizer steps of one rollout batch at a time; see the module docstring."""

    provides = frozenset({"logp", "old_logp", "ref_logp", "teacher_logp", "advantages", "entropy", "group_id"})

    def __init__(self, samples: list[Sample], adapter: ModalityAdapter, engine: RolloutEngine, cfg: RunConfig,
                 needed: set[str], old_logp_fn: LogpFn, ref_logp_fn: LogpFn | None = None,
                 teacher_logp_fn: LogpFn | None = None, run_dir: Path | None = None, rank: int = 0,
                 world_size: int = 1) -> None:
        if not samples:
            raise DataError("the RL prompt dataset is empty")
        rl = cfg.rl
        if rl.group_size < 1 or rl.prompts_per_step < 1:
            raise ValueError("rl.group_size and rl.prompts_per_step must be >= 1")
        self.samples, self.adapter, self.engine, self.cfg = samples, adapter, engine, cfg
        self.rewards = [r.strip() for r in rl.rewards.split(",") if r.strip()]
        self.weights = [float(w) for w in rl.reward_weights.split(",") if w.strip()] or None
        if not self.rewards and rl.advantage != "opd":
            raise ValueError("rl.rewards is empty: name at least one registered reward (e.g. rl.rewards=cls_accuracy)")
        self.advantage = get_advantage(rl.advantage)
        self.overlong_cache = rl.max_new_tokens // 5 if rl.soft_overlong_cache < 0 else rl.soft_overlong_cache
        if self.overlong_cache >= rl.max_new_tokens:
            raise ValueError(f"rl.soft_overlong_cache ({self.overlong_cache}) must be smaller than rl.max_new_tokens "
                             f"({rl.max_new_tokens})")
        self.needed = set(needed)
        self.kl_in_reward = cfg.objective.kl_coef > 0 and cfg.objective.kl_placement == "reward"
        self.needs_old = rl.ppo_epochs > 1 or rl.mini_batches > 1 or rl.advantage == "opd" or self.kl_in_reward
        self.old_logp_fn, self.ref_logp_fn, self.teacher_logp_fn = old_logp_fn, ref_logp_fn, teacher_logp_fn
        if ("ref_logp" in needed or self.kl_in_reward) and ref_logp_fn is None:
            raise ValueError("the configured KL term needs a reference model, but none was set up")
        if rl.advantage == "opd" and teacher_logp_fn is None:
            raise ValueError("rl.advantage=opd needs rl.teacher (a model that shares the student's tokenizer)")
        self.run_dir, self.rank, self.world_size = run_dir, rank, world_size
        self.state = {"epoch": 0, "cursor": 0, "rollout_batches": 0}
        self._order = self._permutation(0)
        self._prompt_cache: dict[int, Encoded] = {}
        self._queue: list[list[ModelBatch]] = []
        self._metrics: dict[str, float] = {}

    # ---- prompt order (checkpointed) -----------------------------------------------------------------------------
    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.cfg.train.seed, epoch]).permutation(len(self.samples))

    def _next_prompts(self, count: int) -> list[int]:
        out = []
        for _ in range(count):
            if self.state["cursor"] >= len(self._order):
                self.state["epoch"] += 1
                self.state["cursor"] = 0
                self._order = self._permutation(self.state["epoch"])
            out.append(int(self._order[self.state["cursor"]]))
            self.state["cursor"] += 1
        return out

    def _prompt(self, index: int) -> Encoded:
        if index not in self._prompt_cache:
            self._prompt_cache[index] = self.adapter.encode(self.samples[index], with_target=False)
        return self._prompt_cache[index]

    # ---- rollout phase -------------------------------------------------------------------------------------------
    def _sample_groups(self, indices: list[int], round_index: int) -> list[tuple[int, list[Rollout], list[float], dict]]:
        rl = self.cfg.rl
        params = SamplingParams(n=rl.group_size, max_new_tokens=rl.max_new_tokens, temperature=rl.temperature,
                                top_p=rl.top_p, top_k=rl.top_k,
                                stop_strings=tuple(s for s in rl.stop_strings.split(",") if s),
                                seed=self.cfg.train.seed * 1_000_003 + self.state["rollout_batches"] * 101 + round_index)
        rollouts = self.engine.generate([self._prompt(i) for i in indices], params)
        samples = [self.samples[indices[r.prompt_index]] for r in rollouts]
        texts = [r.text for r in rollouts]
        if self.rewards:
            result = compute_rewards(self.rewards, self.weights, samples, texts)
            totals, parts = result.total, result.parts
        else:
            totals, parts = [0.0] * len(rollouts), {}
        for k, r in enumerate(rollouts):
            totals[k] += soft_overlong_penalty(len(r.completion_ids), rl.max_new_tokens, self.overlong_cache,
                                               rl.soft_overlong_penalty)
        groups = []
        for g, index in enumerate(indices):
            members = slice(g * rl.group_size, (g + 1) * rl.group_size)
            group_parts = {name: values[members] for name, values in parts.items()}
            groups.append((index, rollouts[members], totals[members], group_parts))
        return groups

    def _collect(self) -> tuple[list[tuple[int, list[Rollout], list[float], dict]], dict[str, float]]:
        rl = self.cfg.rl
        wanted = rl.prompts_per_step
        kept, dropped, rounds, all_groups = [], 0, 0, []
        while len(kept) < wanted:
            need = wanted - len(kept)
            groups = self._sample_groups(self._next_prompts(need), rounds)
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
        self._log_reward_metrics(all_groups, stats)
        return kept[:wanted], stats

    def _log_reward_metrics(self, groups: list, stats: dict[str, float]) -> None:
        totals = [v for g in groups for v in g[2]]
        lengths = [len(r.completion_ids) for g in groups for r in g[1]]
        truncated = [r.truncated for g in groups for r in g[1]]
        stats["reward/total"] = float(np.mean(totals))
        stats["rollout/response_length"] = float(np.mean(lengths))
        stats["rollout/truncated_frac"] = float(np.mean(truncated))
        names = sorted({name for g in groups for name in g[3]})
        for name in names:
            values = [v for g in groups for v in g[3].get(name, [])]
            stats[f"reward/{name}"] = float(np.mean(values))
        accuracy = [stats[f"reward/{n}"] for n in names if "accuracy" in n and "/" not in n]
        if accuracy:
            stats["train/accuracy"] = accuracy[0]

    # ---- from groups to optimizer steps -------------------------------------------------------------------------
    def _refill(self) -> None:
        rl, started = self.cfg.rl, time.perf_counter()
        groups, stats = self._collect()
        stats["time/generation_s"] = time.perf_counter() - started
        rollouts = [r for g in groups for r in g[1]]
        rewards = torch.tensor([v for g in groups for v in g[2]], dtype=torch.float32)
        group_id = torch.tensor([gi for gi, g in enumerate(groups) for _ in g[1]], dtype=torch.long)
        encoded = [r.as_encoded() for r in rollouts]
        masked_out = 0
        if rl.overlong_filter:
            for e, r in zip(encoded, rollouts):
                if r.truncated:
                    e.loss_mask[:] = False
                    masked_out += 1
        stats["rollout/overlong_masked"] = float(masked_out)
        micro = self.cfg.train.micro_batch_size
        order = list(range(len(encoded)))[self.rank::self.world_size]
        chunks = [order[i:i + micro] for i in range(0, len(order), micro)]
        batches = [self.adapter.collate([encoded[i] for i in chunk]) for chunk in chunks]
        started = time.perf_counter()
        per_rollout: dict[str, list[torch.Tensor | None]] = {k: [None] * len(encoded) for k in ("old", "ref", "teacher")}
        for chunk, batch in zip(chunks, batches):
            for key, fn, wanted in (("old", self.old_logp_fn, self.needs_old),
                                    ("ref", self.ref_logp_fn, "ref_logp" in self.needed or self.kl_in_reward),
                                    ("teacher", self.teacher_logp_fn, rl.advantage == "opd")):
                if wanted and fn is not None:
                    values = fn(batch)
                    batch.fields[f"{key}_logp"] = values.detach().cpu().float()
                    for i, vec in zip(chunk, gather_from_mask(values, batch.loss_mask)):
                        per_rollout[key][i] = vec
        stats["time/logprob_passes_s"] = time.perf_counter() - started
        token_mask = _pad([torch.ones(len(r.completion_ids)) for r in rollouts])[1]
        inputs = AdvantageInputs(rewards=rewards, group_id=group_id, mask=token_mask)
        if self.needs_old:
            inputs.old_logp = _pad([v if v is not None else torch.zeros(0) for v in per_rollout["old"]])[0]
        if rl.advantage == "opd":
            inputs.teacher_logp = _pad([v if v is not None else torch.zeros(0) for v in per_rollout["teacher"]])[0]
        if self.kl_in_reward:
            old = _pad([v for v in per_rollout["old"]])[0]
            ref = _pad([v for v in per_rollout["ref"]])[0]
            kl = get_kl(self.cfg.objective.kl_estimator).fn(old, ref)
            inputs.token_penalty = self.cfg.objective.kl_coef * kl * token_mask
            stats["kl_in_reward"] = float((kl * token_mask).sum() / token_mask.sum().clamp(min=1))
        advantages = self.advantage.fn(inputs, self.cfg.rl)
        for chunk, batch in zip(chunks, batches):
            rows = [advantages[i][: len(rollouts[i].completion_ids)] for i in chunk]
            batch.fields["advantages"] = scatter_to_mask(rows, batch.loss_mask)
            batch.fields["group_id"] = group_id[chunk]
            batch.fields.pop("teacher_logp", None)
        self._write_completions(groups)
        self._queue = self._schedule(batches)
        self.state["rollout_batches"] += 1
        self._metrics = stats

    def _schedule(self, batches: list[ModelBatch]) -> list[list[ModelBatch]]:
        rl = self.cfg.rl
        steps: list[list[ModelBatch]] = []
        rng = np.random.default_rng([self.cfg.train.seed, self.state["rollout_batches"]])
        for epoch in range(rl.ppo_epochs):
            order = list(range(len(batches))) if epoch == 0 else list(rng.permutation(len(batches)))
            for part in np.array_split(np.asarray(order), rl.mini_batches):
                if len(part):
                    steps.append([batches[i] for i in part])
        return steps

    def _write_completions(self, groups: list) -> None:
        if self.run_dir is None or self.cfg.rl.log_completions <= 0 or self.rank != 0:
            return
        folder = self.run_dir / "rollouts"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"batch-{self.state['rollout_batches']:06d}.jsonl", "w", encoding="utf-8") as handle:
            written = 0
            for index, rollouts, totals, _ in groups:
                for rollout, total in zip(rollouts, totals):
                    if written >= self.cfg.rl.log_completions:
                        return
                    sample = self.samples[index]
                    handle.write(json.dumps({"sample_id": sample.id, "answer": sample.answer, "completion": rollout.text,
                                             "reward": total, "truncated": rollout.truncated}) + "\n")
                    written += 1

    # ---- producer protocol -----------------------------------------------------------------------------------
    def next_step(self) -> list[ModelBatch]:
        if not self._queue:
            self._refill()
        return self._queue.pop(0)

    def pop_metrics(self) -> dict[str, float]:
        metrics, self._metrics = self._metrics, {}
        return metrics

    def at_rollout_boundary(self) -> bool:
        return not self._queue

    def steps_per_rollout(self) -> int:
        return self.cfg.rl.ppo_epochs * self.cfg.rl.mini_batches

    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = dict(state)
        self._order = self._permutation(self.state["epoch"])
