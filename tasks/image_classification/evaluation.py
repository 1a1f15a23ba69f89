"""Base-to-new evaluation of a model on CLS-RL test splits (greedy decoding, lenient parser).

CLS-RL (Li et al., arXiv 2503.16188) evaluates greedily with ``max_new_tokens`` 1024 and its lenient parser
(:func:`~tasks.image_classification.rewards.is_correct_lenient`); the base-to-new summary is CoOp's (Zhou et al.,
IJCV 2022): accuracy on base classes, on new classes and their harmonic mean.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from mmsft.data.loaders import load_jsonl
from mmsft.data.schema import Sample
from mmsft.eval.generation import generate
from tasks.image_classification.rewards import evaluate_predictions, is_correct_lenient


def _samples(data: str | os.PathLike[str] | Sequence[Sample]) -> list[Sample]:
    if isinstance(data, (str, os.PathLike)):
        return load_jsonl(Path(data))
    return list(data)


def evaluate_base_new(model: Any, adapter: Any, test_base: str | os.PathLike[str] | Sequence[Sample],
                      test_new: str | os.PathLike[str] | Sequence[Sample], batch_size: int = 16,
                      max_new_tokens: int = 64) -> dict[str, Any]:
    """Generate greedily on both test splits and score them.

    Returns :func:`~tasks.image_classification.rewards.evaluate_predictions`'s ``{"base", "new", "hm", "n_base",
    "n_new"}`` plus ``"predictions"``: one ``{"id", "split", "answer", "prediction", "correct"}`` per sample.
    """
    records = []
    for split, data in (("base", test_base), ("new", test_new)):
        samples = _samples(data)
        outputs = generate(model, adapter, samples, batch_size=batch_size, max_new_tokens=max_new_tokens)
        for sample, output in zip(samples, outputs):
            answer = sample.answer if sample.answer is not None else sample.meta.get("class")
            records.append({"id": sample.id, "split": split, "answer": answer, "prediction": output,
                            "correct": is_correct_lenient(output, str(answer))})
    summary: dict[str, Any] = dict(evaluate_predictions(records))
    summary["predictions"] = records
    return summary


__all__ = ["evaluate_base_new"]
