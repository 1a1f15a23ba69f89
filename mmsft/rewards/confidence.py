"""ConMax confidence reward (Hu et al., "ConMax", arXiv 2601.04973; from a third-party summary — weights not
recovered): a compression policy rewrites a verbose reasoning trace into ẑ, and a frozen reasoning model π_φ scores it

    S_ans(ẑ)   = (1/|y|) Σ_i log p_φ(y_i | x, ẑ, y_<i)     (confidence in the gold answer after the trace)
    S_think(ẑ) = (1/|ẑ|) Σ_j log p_φ(ẑ_j | x, ẑ_<j)       (fluency of the trace)
    R_c(ẑ)     = w_ans·S_ans + w_think·S_think.

One teacher-forced forward of π_φ over (x, ẑ + answer) gives both means (they share the prefix). A factory, since it
needs the frozen model (a plugin registers it: ``register_reward("conmax", conmax_reward("models/lrm"))``); the same
code is a generic frozen-model log-likelihood reward. Parts ``ans`` and ``think`` are returned (weighted); a
completion too long for ``max_tokens`` or without a gold answer scores ``floor`` on both parts.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch


def conmax_reward(model_dir: str, w_ans: float = 0.5, w_think: float = 0.5, max_tokens: int = 4096,
                  template: str = "{thinking}\n\nAnswer: {answer}", floor: float = -20.0
                  ) -> Callable[..., list[dict[str, float]]]:
    """A reward ``fn(samples, completions)`` → ``{"ans": w_ans·S_ans, "think": w_think·S_think}`` per completion."""
    from mmsft.data.schema import DataError, Message, Part, Sample
    from mmsft.data.transforms_weights import token_char_spans
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.models.policy import Policy

    if "{thinking}" not in template or "{answer}" not in template.split("{thinking}", 1)[1]:
        raise ValueError(f"template must contain {{thinking}} followed by {{answer}}, got {template!r}")
    loaded = load_model(model_dir)
    adapter = build_adapter(loaded, max_length=max_tokens, overlong="drop")
    policy = Policy(loaded.model.eval())
    low = {"ans": w_ans * floor, "think": w_think * floor}

    @torch.no_grad()
    def score(sample: Any, thinking: str) -> dict[str, float]:
        answer = getattr(sample, "answer", None)
        prompt = getattr(sample, "prompt_messages", None)
        if not isinstance(answer, str) or not answer or not prompt or len(thinking) > 4 * max_tokens:
            return dict(low)
        thinking = thinking.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be tokenized
        head, rest = template.split("{thinking}", 1)
        middle, tail = rest.split("{answer}", 1)
        text = head + thinking + middle + answer + tail
        think_lo, cut = len(head), len(head) + len(thinking) + len(middle)
        candidate = Sample(str(getattr(sample, "id", "?")), [*prompt, Message("assistant", (Part("text", text=text),))])
        try:
            spans, _ = token_char_spans(adapter, candidate)
            encoded = adapter.encode(candidate)
        except DataError:  # over max_tokens, or a template the tokenizer does not round-trip
            return dict(low)
        batch = adapter.collate([encoded])
        logp = policy(batch.inputs, batch.loss_mask).logp[0][batch.loss_mask[0]].float()
        think = [i for i, (lo, hi) in enumerate(spans) if lo < hi and lo < think_lo + len(thinking) and hi > think_lo]
        ans = [i for i, (lo, hi) in enumerate(spans) if lo < hi and lo < cut + len(answer) and hi > cut]
        mean = lambda idx: float(logp[idx].mean()) if idx else floor  # noqa: E731
        return {"ans": w_ans * mean(ans), "think": w_think * mean(think)}

    def reward(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[dict[str, float]]:
        return [score(s, c) for s, c in zip(samples, completions)]

    return reward
