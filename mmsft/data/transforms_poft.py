"""Offline reference scores for PoFT (Fan et al., arXiv 2412.12865): r̄ = (1/M) Σ_j (1/T_j) Σ_t log p_j(y_t | x, y_<t),
the mean over M aligned models of the target's length-normalised log-likelihood, each model with its own tokenizer and
chat template (its own mmsft adapter), so T_j differs per model. The ``poft`` loss reads r̄ from ``meta.ref_score``.

Rows are scored in batches under ``torch.no_grad``; a row the model cannot encode (over ``max_length``) is an error
naming the row, never a silently missing score.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from mmsft.data.schema import DataError, Sample


@torch.no_grad()
def mean_target_logprob(model_dir: str, samples: Sequence[Sample], batch_size: int = 8,
                        max_length: int | None = None) -> list[float]:
    """(1/T) Σ_t log p(y_t | x, y_<t) of every sample's target under one model (its own adapter)."""
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.models.policy import Policy

    loaded = load_model(model_dir)
    adapter = build_adapter(loaded, max_length=max_length, overlong="error")
    policy = Policy(loaded.model.eval())
    subset = adapter.vocab_subset()
    scores: list[float] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        encoded = [adapter.encode(s, with_target=True) for s in chunk]
        for sample, item in zip(chunk, encoded):
            if not bool(item.loss_mask.any()):
                raise DataError(f"{sample.where()}: the sample has no supervised tokens to score")
        batch = adapter.collate(encoded)
        logp = policy(batch.inputs, batch.loss_mask, vocab_subset=subset).logp
        mask = batch.loss_mask.float()
        scores += ((logp * mask).sum(-1) / mask.sum(-1)).tolist()
    return scores


def reference_scores(model_dirs: Sequence[str], samples: Sequence[Sample], batch_size: int = 8) -> list[float]:
    """PoFT's r̄ per sample: the mean of :func:`mean_target_logprob` over the aligned models."""
    if not model_dirs:
        raise ValueError("PoFT reference scores need at least one aligned model")
    per_model = [mean_target_logprob(m, samples, batch_size) for m in model_dirs]
    return [sum(values) / len(values) for values in zip(*per_model)]


def add_reference_scores(jsonl_in: str | Path, jsonl_out: str | Path, model_dirs: Sequence[str],
                         batch_size: int = 8) -> int:
    """Copy a JSONL dataset adding ``meta.ref_score`` to every row; returns the number of rows. Rows are copied
    verbatim, so write the output next to the input when rows name media files (paths are relative to the JSONL)."""
    from mmsft.data.loaders import load_dataset

    samples = load_dataset(str(jsonl_in))
    scores = reference_scores(model_dirs, samples, batch_size)
    rows = [json.loads(line) for line in Path(jsonl_in).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(rows) != len(samples):
        raise DataError(f"{jsonl_in}: {len(rows)} rows but {len(samples)} samples were loaded")
    with open(jsonl_out, "w", encoding="utf-8") as handle:
        for row, score in zip(rows, scores):
            row["meta"] = {**(row.get("meta") or {}), "ref_score": score}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
