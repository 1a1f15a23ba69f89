"""Decoding-time controls that act on the sampling distribution (usable in rollouts and in evaluation).

* :class:`StopTokenTemperature` — TLDR's temperature scaling (TS) of the stopping decision (Zhang et al., "Making Small
  Language Models Efficient Reasoners: Intervention, Supervision, Reinforcement", arXiv 2505.07961): a training-free
  intervention that raises the probability of the end-of-thinking / end-of-sequence token so that verbose SFT-distilled
  small models stop earlier (the paper reports it beating s1's budget forcing).

  The paper's exact formula could not be recovered from a primary source (*unverified*; summaries say it rescales the
  EOS logit by a temperature to increase its selection probability). A raw logit divided by T moves the wrong way
  when the logit is negative, so we apply the temperature to the stop token's *log-probability*, which is always ≤ 0:

      ℓ_s ← ℓ_s / T  for every stop id s,   ℓ = log_softmax(z);  after renormalisation
      p'_s = p_s^{1/T} / Z,   p'_v = p_v / Z (v not a stop id),   Z = Σ_v p_v + Σ_s p_s^{1/T}

  T > 1 raises every stop probability monotonically (T → ∞: p'_s → 1/Z with the stop mass dominating), T < 1 lowers
  it, T = 1 is the identity; ids already at −∞ (masked by top-k / top-p / a vocabulary subset) stay at −∞.

  Rollouts: ``rl.stop_temperature`` (and ``rl.stop_temperature_tokens``, default the adapter's stop tokens) — the
  processor runs after temperature / top-k / top-p and before the sampler log-prob recorder, so recorded sampler
  log-probs are those of the modified distribution. Evaluation / scripts: pass
  ``logits_processor=[stop_temperature_processor(adapter, T, tokens)]`` to ``LoadedPolicy.generate`` or HF
  ``generate``. (TLDR's length-regularised GRPO reward is ``tldr_length`` in :mod:`mmsft.rewards`.)
"""

from __future__ import annotations

from typing import Any, Sequence

import torch


class StopTokenTemperature:
    """HF-style logits processor ``(input_ids, scores) -> scores``: the stop ids' log-probabilities divided by ``T``
    (module docstring). Returns log-probabilities (a valid logits vector: softmax renormalises)."""

    def __init__(self, stop_ids: Sequence[int], temperature: float) -> None:
        if not stop_ids:
            raise ValueError("stop-token temperature needs at least one stop token id")
        if not (temperature > 0 and temperature < float("inf")):
            raise ValueError(f"stop-token temperature must be a positive finite number, got {temperature!r}")
        self.stop_ids = torch.tensor(sorted({int(i) for i in stop_ids}), dtype=torch.long)
        self.temperature = float(temperature)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if int(self.stop_ids.max()) >= scores.shape[-1] or int(self.stop_ids.min()) < 0:
            raise ValueError(f"stop-token ids {self.stop_ids.tolist()} are outside the vocabulary of "
                             f"{scores.shape[-1]} entries")
        logp = torch.log_softmax(scores.float(), dim=-1)
        ids = self.stop_ids.to(scores.device)
        return logp.index_copy(-1, ids, logp.index_select(-1, ids) / self.temperature)


def resolve_stop_ids(tokenizer: Any, tokens: str, default: Sequence[int]) -> tuple[int, ...]:
    """Token ids of a comma-separated list of token strings (e.g. ``"</think>"``), each of which must be a single
    token of ``tokenizer``; empty → ``default`` (the adapter's stop tokens)."""
    names = [t for t in (x.strip() for x in tokens.split(",")) if t]
    if not names:
        return tuple(int(i) for i in default)
    vocab = tokenizer.get_vocab()
    missing = [t for t in names if t not in vocab]
    if missing:
        raise ValueError(f"rl.stop_temperature_tokens: {missing} are not single tokens of the model's tokenizer "
                         "(give tokens as they appear in the vocabulary, e.g. </think>)")
    return tuple(int(vocab[t]) for t in names)


def stop_temperature_processor(adapter: Any, temperature: float, tokens: str = "") -> StopTokenTemperature:
    """A :class:`StopTokenTemperature` for ``adapter``'s tokenizer: ``tokens`` as in :func:`resolve_stop_ids`."""
    return StopTokenTemperature(resolve_stop_ids(adapter.tokenizer, tokens, adapter.stop_token_ids), temperature)
