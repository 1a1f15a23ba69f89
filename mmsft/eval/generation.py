"""Batched greedy generation and answer accuracy (the evaluation used by ``mmsft eval`` and the training loop)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from mmsft.data.schema import Sample
from mmsft.models.adapters import ModalityAdapter


@dataclass
class EvalResult:
    accuracy: float
    correct: int
    total: int
    predictions: list[dict[str, Any]]


def normalize_answer(text: str) -> str:
    text = re.sub(r"<answer>\s*(.*?)\s*</answer>", r"\1", text, flags=re.DOTALL)
    return re.sub(r"\s+", " ", text).strip().strip(".").lower()


def is_correct(prediction: str, answer: Any, match: str = "exact") -> bool:
    if answer is None:
        raise ValueError("sample has no 'answer' to compare with")
    pred, gold = normalize_answer(prediction), normalize_answer(str(answer))
    return pred == gold if match == "exact" else gold in pred


@torch.no_grad()
def generate(model: Any, adapter: ModalityAdapter, samples: list[Sample], batch_size: int = 16,
             max_new_tokens: int = 16, do_sample: bool = False, **sampling: Any) -> list[str]:
    """Completions for each sample's prompt (left-padded batches, KV cache, vision tokens suppressed)."""
    model.eval()
    device = next(model.parameters()).device
    outputs: list[str] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        batch = adapter.collate([adapter.encode(s, with_target=False) for s in chunk], padding_side="left").to(device)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                                  "eos_token_id": adapter.stop_token_ids, "pad_token_id": adapter.pad_token_id}
        if adapter.suppressed_token_ids:
            kwargs["suppress_tokens"] = adapter.suppressed_token_ids
        if not do_sample:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        kwargs.update(sampling)
        generated = model.generate(**batch.inputs, **kwargs)
        new_tokens = generated[:, batch.inputs["input_ids"].shape[1]:]
        outputs.extend(adapter.decode(row, skip_special_tokens=True) for row in new_tokens)
    return outputs


def evaluate_accuracy(model: Any, adapter: ModalityAdapter, samples: list[Sample], batch_size: int = 16,
                      max_new_tokens: int = 16, match: str = "exact") -> EvalResult:
    predictions = generate(model, adapter, samples, batch_size=batch_size, max_new_tokens=max_new_tokens)
    rows, correct = [], 0
    for sample, prediction in zip(samples, predictions):
        ok = is_correct(prediction, sample.answer, match)
        correct += int(ok)
        rows.append({"id": sample.id, "prediction": prediction, "answer": sample.answer, "correct": ok,
                     "kind": sample.meta.get("kind")})
    return EvalResult(accuracy=correct / max(len(samples), 1), correct=correct, total=len(samples), predictions=rows)


def accuracy_by(rows: list[dict[str, Any]], key: str = "kind") -> dict[str, float]:
    groups: dict[str, list[bool]] = {}
    for row in rows:
        groups.setdefault(str(row.get(key)), []).append(bool(row["correct"]))
    return {name: sum(v) / len(v) for name, v in sorted(groups.items())}
