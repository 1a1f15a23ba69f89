"""Output-diversity metrics (Kirk et al., "Understanding the Effects of RLHF on LLM Generalisation and Diversity",
arXiv 2310.06452; EAD from Liu et al. 2022, "Rethinking and Refining the Distinct Metric", arXiv 2202.13587).

* distinct-n = unique n-grams / all n-grams over a set of texts.
* EAD_n = N_unique / (V · (1 − ((V − 1)/V)^C)), C = total n-grams in the set, V = vocabulary size (Kirk et al.'s
  code default: 50257); ``ead_average`` averages n = 1..5.
* embedding diversity = 1 − mean over unordered pairs of cos(e_a, e_b) (Sentence-BERT diversity; any encoder).

Texts are split into units by ``str.split`` (whitespace) unless token lists are passed; linear in the input size.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

Units = Sequence[str]


def _units(items: Sequence[str] | Sequence[Units]) -> list[list[str]]:
    return [item.split() if isinstance(item, str) else list(item) for item in items]


def ngrams(units: Units, n: int) -> list[tuple[str, ...]]:
    if n < 1:
        raise ValueError(f"n-gram order must be >= 1, got {n}")
    return [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]


def _counts(items: Sequence[str] | Sequence[Units], n: int) -> tuple[int, int]:
    unique: set[tuple[str, ...]] = set()
    total = 0
    for units in _units(items):
        grams = ngrams(units, n)
        total += len(grams)
        unique.update(grams)
    return len(unique), total


def distinct_n(items: Sequence[str] | Sequence[Units], n: int = 1) -> float:
    """Unique / total n-grams over all items (0 when there are none)."""
    unique, total = _counts(items, n)
    return unique / total if total else 0.0


def ead(items: Sequence[str] | Sequence[Units], n: int = 1, vocab_size: int = 50257) -> float:
    """Expectation-adjusted distinct n-grams (0 when there are none)."""
    if vocab_size < 2:
        raise ValueError(f"ead: vocab_size must be >= 2, got {vocab_size}")
    unique, total = _counts(items, n)
    if not total:
        return 0.0
    expected = vocab_size * (1.0 - math.exp(total * math.log1p(-1.0 / vocab_size)))  # V·(1 − ((V−1)/V)^C)
    return unique / expected


def ead_average(items: Sequence[str] | Sequence[Units], max_n: int = 5, vocab_size: int = 50257) -> float:
    """Mean EAD over n = 1..max_n."""
    if max_n < 1:
        raise ValueError(f"ead_average: max_n must be >= 1, got {max_n}")
    return sum(ead(items, n, vocab_size) for n in range(1, max_n + 1)) / max_n


def pairwise_cosine_mean(embeddings: torch.Tensor) -> float:
    """Mean cosine similarity over unordered pairs of rows (needs at least 2 rows)."""
    e = torch.as_tensor(embeddings, dtype=torch.float64)
    if e.dim() != 2 or e.shape[0] < 2:
        raise ValueError(f"pairwise cosine needs a (n >= 2, d) matrix, got {tuple(e.shape)}")
    e = torch.nn.functional.normalize(e, dim=-1)
    sims = e @ e.T
    n = e.shape[0]
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


def embedding_diversity(embeddings: torch.Tensor) -> float:
    """1 − mean pairwise cosine similarity."""
    return 1.0 - pairwise_cosine_mean(embeddings)


@torch.no_grad()
def embed_texts(model_dir: str, texts: Sequence[str], max_tokens: int = 256, batch_size: int = 16) -> torch.Tensor:
    """Mean-pooled last hidden states of a Hugging Face ``AutoModel`` folder, one row per text."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModel.from_pretrained(model_dir).eval()
    rows = []
    for start in range(0, len(texts), batch_size):
        chunk = [t.encode("utf-8", "replace").decode("utf-8") or " " for t in texts[start:start + batch_size]]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_tokens)
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        rows.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
    return torch.cat(rows) if rows else torch.zeros(0, 1)
