"""Encoder-cosine reward ("Shaping Explanations: Semantic Reward Modeling with Encoder-Only Transformers for GRPO",
Pappone et al., arXiv 2509.13081; the same family as RLSR): R_sem = cos(E(ŷ), E(y_ref)) clipped to [0, 1], with E a
small encoder (mean-pooled last hidden states over the non-padding tokens, any Hugging Face ``AutoModel`` folder).
Combine with answer and format rewards; the paper's weights could not be recovered.

A factory, since it needs a model: a plugin registers it, e.g.::

    register_reward("explanation_cosine", encoder_cosine_reward("models/encoder", reference_key="explanation"))

``ŷ`` is the text inside the last <think>…</think> (``part="think"``) or the whole completion; the reference is
``meta[reference_key]`` (else the sample's ``answer``). Inputs are truncated to ``max_tokens``; reference embeddings
are cached. A sample without a reference scores 0.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

MAX_CHARS = 100_000


def think_text(text: str) -> str:
    """The content of the last <think>…</think> (an unterminated one runs to the end), else the text (linear)."""
    lower = text.lower()
    start = lower.rfind("<think>")
    if start < 0:
        return text
    body = text[start + 7:]
    end = body.lower().find("</think>")
    return body if end < 0 else body[:end]


def encoder_cosine_reward(model_dir: str, reference_key: str = "explanation", part: str = "think",
                          max_tokens: int = 512, batch_size: int = 16) -> Callable[..., list[float]]:
    """A reward ``fn(samples, completions)`` = clip(cos(E(ŷ), E(y_ref)), 0, 1); see the module docstring."""
    from transformers import AutoModel, AutoTokenizer

    if part not in ("think", "all"):
        raise ValueError(f"part must be 'think' or 'all', got {part!r}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModel.from_pretrained(model_dir).eval()
    cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed(texts: list[str]) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), batch_size):
            chunk = [t[:MAX_CHARS].encode("utf-8", "replace").decode("utf-8") or " "  # lone surrogates → "?"
                     for t in texts[start:start + batch_size]]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_tokens)
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1), dim=-1))
        return torch.cat(out) if out else torch.zeros(0, 1)

    def reference(sample: Any) -> str | None:
        meta = getattr(sample, "meta", None) or {}
        value = meta.get(reference_key) if isinstance(meta, dict) else None
        value = value if isinstance(value, str) and value.strip() else getattr(sample, "answer", None)
        return value if isinstance(value, str) and value.strip() else None

    def reward(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[float]:
        refs = [reference(s) for s in samples]
        missing = sorted({r for r in refs if r is not None and r not in cache})
        if missing:
            cache.update(zip(missing, embed(missing)))
        hyps = embed([think_text(c) if part == "think" else c for c in completions])
        return [0.0 if r is None else float((hyps[i] @ cache[r]).clamp(0.0, 1.0)) for i, r in enumerate(refs)]

    return reward
