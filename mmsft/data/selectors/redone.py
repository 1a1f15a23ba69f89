"""RedOne 2.0's targeted fine-tuning data (Zhao et al., "RedOne 2.0: Rethinking Domain-specific LLM Post-Training
in Social Networking Services", arXiv 2511.07070, stage 2 of explore → target → refine).

After exploratory RL, the explored model (the model about to be SFT-trained) samples ``k`` completions for every
*task* instance of the SFT pool; they are scored with verifiable rewards (``rewards``, ``reward_weights``). The
decision rule is the RIF-RFT rollout filter of :mod:`mmsft.data.selection` (``RolloutFilter`` + ``filter_table``)
with ``min_successes = 0`` and ``max_successes = max_successes``: an instance is **failed** — kept for SFT — when at
most ``max_successes`` of its rollouts reach ``success_threshold``; the others are dropped as solved. Rows marked
general (``meta[general_key]`` true) are not sampled: a seeded share of them is mixed in so that general rows make
up ``general_fraction`` of the kept set, ``g = min(#general, round(f · #failed / (1 − f)))`` (the paper mixes a
small share of general data into targeted SFT to limit forgetting). Task prompts over ``data.max_length`` under
the ``drop`` policy are not sampled and are dropped as ``dropped_overlong``.

Reasons: ``kept_failed``, ``dropped_solved``, ``dropped_overlong``, ``kept_general``, ``dropped_general``; each
task decision's ``scores`` hold ``successes`` and ``mean_reward``. The hook (:mod:`mmsft.data.selectors.hook`)
counts them into ``metrics.jsonl`` and writes ``<run>/selection/{report,decisions}.jsonl``, reused on resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from mmsft.config_base import _f
from mmsft.data.schema import Sample
from mmsft.data.selection import RolloutFilter, filter_table
from mmsft.data.selectors.base import Decision, SelectionEnv, register_selector


@dataclass
class RedOneArgs:
    rewards: str = _f("", "Comma list of verifiable rewards that define a success (registered names or pkg.mod:fn).")
    reward_weights: str = _f("", "Comma list of weights, one per reward (empty: all 1).")
    k: int = _f(4, "Rollouts per task instance.", ge=1)
    max_successes: int = _f(0, "An instance is failed (kept) with at most this many successful rollouts (0: none "
                               "solved it).", ge=0)
    success_threshold: float = _f(1.0, "A rollout succeeds when its total reward is at least this.")
    general_key: str = _f("general", "meta key marking general (non-task) rows; they are mixed in, not sampled.")
    general_fraction: float = _f(0.1, "Share of general rows in the kept set (0: none).", ge=0, lt=1)
    temperature: float = _f(1.0, "Sampling temperature of the rollouts.", gt=0)
    max_new_tokens: int = _f(16, "Generation cap of the rollouts.", ge=1)


def targeted_decisions(table: dict[str, list[float] | None], general: Sequence[str], ids: Sequence[str],
                       rule: RolloutFilter, general_fraction: float, seed: int) -> list[Decision]:
    """Decisions, in ``ids`` order, from a rollout table (task id → rewards, ``None``: overlong, not sampled) and the
    general ids. Failed task instances are those ``filter_table`` keeps under ``rule`` (``min_successes = 0``)."""
    if rule.min_successes != 0:
        raise ValueError(f"RedOne targeting keeps the failed instances: min_successes must be 0, got {rule}")
    kept, _ = filter_table(table, rule)
    failed = set(kept)
    general_list = list(general)
    n_general = 0
    if general_fraction > 0 and general_list:
        n_general = min(len(general_list), round(general_fraction * len(failed) / (1 - general_fraction)))
    order = np.random.default_rng([seed, 2511_07070]).permutation(len(general_list))[:n_general]
    general_kept = {general_list[i] for i in order.tolist()}
    general_set = set(general_list)
    out = []
    for index, sid in enumerate(ids):
        if sid in general_set:
            keep = sid in general_kept
            out.append(Decision(index, keep, "kept_general" if keep else "dropped_general"))
            continue
        rewards = table[sid]
        if rewards is None:
            out.append(Decision(index, False, "dropped_overlong"))
            continue
        scores = {"successes": float(rule.successes(rewards)),
                  "mean_reward": float(sum(rewards) / len(rewards)) if rewards else 0.0}
        keep = sid in failed
        out.append(Decision(index, keep, "kept_failed" if keep else "dropped_solved", scores=scores))
    return out


def is_general(sample: Sample, key: str) -> bool:
    return bool(key) and bool((sample.meta or {}).get(key))


def rollout_table(samples: Sequence[Sample], args: RedOneArgs, env: SelectionEnv) -> dict[str, list[float] | None]:
    """``k`` sampled completions per sample with ``env.model`` (eval mode; its mode is restored), scored with the
    rewards: id → the ``k`` total rewards, or ``None`` for a prompt the adapter refuses as overlong."""
    from mmsft.models.adapters import OverlongSample
    from mmsft.rewards import compute_rewards
    from mmsft.rollout import HFGenerateEngine, SamplingParams

    names = [r.strip() for r in args.rewards.split(",") if r.strip()]
    weights = [float(w) for w in args.reward_weights.split(",") if w.strip()] or None
    table: dict[str, list[float] | None] = {}
    prompts, members = [], []
    for s in samples:
        try:
            prompts.append(env.adapter.encode(s, with_target=False))
            members.append(s)
        except OverlongSample:
            table[s.id] = None
    if not prompts:
        return table
    vocab_subset, allow_stop = env.adapter.sampling_constraints()
    was_training = env.model.training
    env.model.eval()
    try:
        engine = HFGenerateEngine(lambda: env.model, env.adapter, batch_size=max(1, env.batch_size))
        rollouts = engine.generate(prompts, SamplingParams(
            n=args.k, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
            seed=env.seed * 1_000_003 + 2511, vocab_subset=vocab_subset, allow_stop=allow_stop))
    finally:
        env.model.train(was_training)
    texts = [r.text for r in rollouts]
    totals = compute_rewards(names, weights, [members[r.prompt_index] for r in rollouts], texts).total
    for m, s in enumerate(members):
        table[s.id] = [float(v) for v in totals[m * args.k:(m + 1) * args.k]]
    return table


@register_selector("redone_targeted", kind="offline", args=RedOneArgs)
def redone_targeted(samples: Sequence[Sample], args: RedOneArgs, env: SelectionEnv) -> list[Decision]:
    """Keep the task instances the current model still fails (rollout filter), plus a share of general rows."""
    from mmsft.data.schema import DataError

    if not [r for r in args.rewards.split(",") if r.strip()]:
        raise DataError("data.selector_args.rewards: redone_targeted needs the verifiable reward(s) that define a "
                        "success (e.g. rewards: my_task_reward)")
    if args.max_successes >= args.k:
        raise DataError(f"data.selector_args: max_successes={args.max_successes} keeps every instance; it must be "
                        f"below k={args.k}")
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise DataError("redone_targeted needs unique sample ids in the SFT pool")
    task = [s for s in samples if not is_general(s, args.general_key)]
    general = [s.id for s in samples if is_general(s, args.general_key)]
    table = rollout_table(task, args, env)
    rule = RolloutFilter(k=args.k, min_successes=0, max_successes=args.max_successes,
                         success_threshold=args.success_threshold)
    return targeted_decisions(table, general, ids, rule, args.general_fraction, env.seed)


__all__ = ["RedOneArgs", "is_general", "redone_targeted", "rollout_table", "targeted_decisions"]
