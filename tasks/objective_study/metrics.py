"""Metrics of the objective study: first-token accuracy and confidence (one forward pass), expected calibration
error, output diversity (distinct-n and EAD over sampled completions).

* ECE (10 equal-width confidence bins; Guo et al. 2017, as used by Li et al. arXiv 2312.13772):
  Σ_m (|B_m|/n)·|acc(B_m) − conf(B_m)|, confidence = the probability of the argmax first token.
* distinct-n: unique n-grams / all n-grams over a set of completions. EAD (Kirk et al., arXiv 2310.06452; Liu et al.
  2022): N_unique / (V·(1 − ((V − 1)/V)^C)) with C the n-gram count and V the vocabulary size, averaged over n = 1, 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch


@dataclass
class FirstToken:
    correct: list[bool]
    confidence: list[float]

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / max(len(self.correct), 1)


@torch.no_grad()
def first_token(model: Any, adapter: Any, samples: Sequence[Any], batch_size: int = 32) -> FirstToken:
    """Greedy first answer token vs the target's first token, with its probability, per sample."""
    from mmsft.models.policy import Policy

    def fn(log_probs, targets, rows, cols):
        best = log_probs.max(-1)
        return {"hit": (best.indices == targets).float(), "conf": best.values.exp()}

    policy = Policy(model)
    was_training = model.training
    model.eval()
    correct, confidence = [], []
    try:
        for start in range(0, len(samples), batch_size):
            batch = adapter.collate([adapter.encode(s) for s in samples[start:start + batch_size]])
            out = policy(batch.inputs, batch.loss_mask, token_fn=fn, vocab_subset=adapter.vocab_subset())
            first = batch.loss_mask.float().argmax(-1)
            rows = torch.arange(len(first))
            correct += [bool(v) for v in out.extra["hit"][rows, first].tolist()]
            confidence += out.extra["conf"][rows, first].tolist()
    finally:
        model.train(was_training)
    return FirstToken(correct, confidence)


def ece(correct: Sequence[bool], confidence: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error with equal-width confidence bins."""
    n = len(correct)
    if n == 0:
        return 0.0
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidence) if (lo < c <= hi) or (b == 0 and c == 0.0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            conf = sum(confidence[i] for i in members) / len(members)
            total += len(members) / n * abs(acc - conf)
    return total


def _ngrams(tokens: Sequence[Any], n: int) -> list[tuple]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(completions: Sequence[Sequence[Any]], n: int) -> float:
    grams = [g for c in completions for g in _ngrams(c, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def ead(completions: Sequence[Sequence[Any]], vocab_size: int, orders: Sequence[int] = (1, 2)) -> float:
    """Expectation-adjusted distinct n-grams, averaged over ``orders``."""
    values = []
    for n in orders:
        grams = [g for c in completions for g in _ngrams(c, n)]
        count = len(grams)
        if count == 0:
            values.append(0.0)
            continue
        expected = vocab_size * (1.0 - ((vocab_size - 1) / vocab_size) ** count)
        values.append(len(set(grams)) / expected)
    return sum(values) / len(values)


@torch.no_grad()
def sampled_diversity(model: Any, adapter: Any, samples: Sequence[Any], n: int = 4, max_new_tokens: int = 6,
                      seed: int = 0) -> dict[str, float]:
    """distinct-1/2 and EAD over ``n`` samples per prompt at temperature 1 (across inputs), and the mean per-prompt
    distinct-1 (within input)."""
    from mmsft.rollout import HFGenerateEngine, SamplingParams

    engine = HFGenerateEngine(lambda: model, adapter)
    rollouts = engine.generate([adapter.encode(s, with_target=False) for s in samples],
                               SamplingParams(n=n, max_new_tokens=max_new_tokens, temperature=1.0, seed=seed))
    completions = [r.completion_ids.tolist() for r in rollouts]
    per_prompt = [distinct_n(completions[i:i + n], 1) for i in range(0, len(completions), n)]
    vocab = len(adapter.tokenizer)
    return {"distinct_1": distinct_n(completions, 1), "distinct_2": distinct_n(completions, 2),
            "ead": ead(completions, vocab), "distinct_1_per_prompt": sum(per_prompt) / max(len(per_prompt), 1)}
