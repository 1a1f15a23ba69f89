"""CLS-RL rewards (registered in mmsft's reward registry) and the lenient evaluation parser.

From Li et al., "To Think or Not To Think" / CLS-RL (arXiv 2503.16188), code github minglllli/CLS-RL:

* ``cls_accuracy`` (``grpo.py``): the text inside ``<answer>...</answer>`` of the solution and of the completion
  (the whole text when a side has no tags), both stripped, compared case-insensitively → 1.0 / 0.0. CLS-RL tries
  ``math_verify`` first; class names are not math, so mmsft goes straight to the string rule.
* ``cls_format`` (``grpo.py``): 1.0 iff the completion fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>``
  (DOTALL). CLS-RL's reward is ``cls_accuracy + cls_format`` ∈ {0, 1, 2}.
* ``cls_nothink_equality`` (``grpo_direct.py``, No-Thinking-CLS-RL): 1.0 iff ``gt == completion`` where ``gt`` is
  the stripped answer text of the solution and the completion is raw: no strip, case-sensitive.
* Evaluation (``test_qwen2vl_fewshot.py``): :func:`parse_eval_answer` and :func:`is_correct_lenient`.

Ground truth comes from an ``answer`` or ``solution`` column (one entry per completion) when the trainer passes
one, else from ``sample.answer`` (the label) — plain labels and ``"<answer> label </answer>"`` both work.

Completions are hostile input: every function here is total and linear in the text's length (tags are found with
``str.find`` and one linear regex, with the same results as CLS-RL's lazy regexes, which rescan the rest of the
text for every unclosed ``<answer>``). A completion over :data:`~envs.verdict.MAX_RESPONSE_CHARS` characters is not
read: it scores 0.0 on every reward, is wrong in evaluation and is counted there as ``n_too_long``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from envs.verdict import too_long
from mmsft.rewards import register_reward

_OPEN, _CLOSE = "<answer>", "</answer>"
_THINK_OPEN = "<think>"
_THINK_THEN_ANSWER = re.compile(r"</think>\s*<answer>")


def _tagged(text: str) -> str | None:
    """Text between the first ``<answer>`` and the first ``</answer>`` after it (what ``<answer>(.*?)</answer>``
    finds: if the first opening tag is never closed, no later one is), else None."""
    start = text.find(_OPEN)
    if start < 0:
        return None
    end = text.find(_CLOSE, start + len(_OPEN))
    return None if end < 0 else text[start + len(_OPEN):end]


def extract_answer(text: str) -> str:
    """Stripped text inside the first ``<answer>...</answer>``; the whole text stripped when untagged."""
    inner = _tagged(text)
    return (inner if inner is not None else text).strip()


def is_think_answer_format(text: str) -> bool:
    """Whether ``text`` fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL), in linear time:
    it starts with ``<think>``, ends with ``</answer>`` and holds ``</think>``, whitespace, ``<answer>`` between."""
    if not (text.startswith(_THINK_OPEN) and text.endswith(_CLOSE)):
        return False
    body = text[len(_THINK_OPEN):len(text) - len(_CLOSE)]
    return _THINK_THEN_ANSWER.search(body) is not None


def _ground_truths(samples: Sequence[Any], count: int, answer: Sequence[Any] | None,
                   solution: Sequence[Any] | None) -> list[str]:
    column = solution if solution is not None else answer
    out = []
    for index in range(count):
        value = column[index] if column is not None else getattr(samples[index], "answer", None)
        if value is None:
            meta = getattr(samples[index], "meta", None) or {}
            value = meta.get("solution") or meta.get("class")
        if value is None:
            where = getattr(samples[index], "id", index)
            raise ValueError(f"sample {where!r}: no ground truth (pass an 'answer' or 'solution' column or set "
                             "sample.answer to the class name)")
        out.append(extract_answer(str(value)))
    return out


@register_reward("cls_accuracy")
def cls_accuracy(samples: Sequence[Any], completions: Sequence[str], answer: Sequence[Any] | None = None,
                 solution: Sequence[Any] | None = None, **_: Any) -> list[float]:
    """CLS-RL accuracy: tagged (or whole) answer equals the label, stripped and case-insensitive."""
    truths = _ground_truths(samples, len(completions), answer, solution)
    return [float(not too_long(text) and extract_answer(text).lower() == gt.lower())
            for text, gt in zip(completions, truths)]


@register_reward("cls_format")
def cls_format(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[float]:
    """CLS-RL format: the completion is exactly ``<think>...</think>`` then ``<answer>...</answer>``."""
    return [float(not too_long(text) and is_think_answer_format(text)) for text in completions]


@register_reward("cls_nothink_equality")
def cls_nothink_equality(samples: Sequence[Any], completions: Sequence[str], answer: Sequence[Any] | None = None,
                         solution: Sequence[Any] | None = None, **_: Any) -> list[float]:
    """No-Thinking-CLS-RL accuracy: 1.0 iff the raw completion is exactly the label (no strip, case-sensitive)."""
    truths = _ground_truths(samples, len(completions), answer, solution)
    return [float(not too_long(text) and gt == text) for text, gt in zip(completions, truths)]


def parse_eval_answer(output: str) -> str:
    """CLS-RL's evaluation parser: ``<answer>\\s*(.*?)\\s*</answer>``, else the whole output stripped ("" when
    the output is over the length cap)."""
    if too_long(output):
        return ""
    inner = _tagged(output)
    return (inner if inner is not None else output).strip()


def is_correct_lenient(output: str, label: str) -> bool:
    """Correct iff ``gt == ans`` or ``gt in ans`` (lower-cased), retried with ``_`` → space on both sides."""
    if too_long(output):
        return False
    ans, gt = parse_eval_answer(output).lower(), label.strip().lower()
    if gt == ans or gt in ans:
        return True
    ans, gt = ans.replace("_", " "), gt.replace("_", " ")
    return gt == ans or gt in ans


def harmonic_mean(a: float, b: float) -> float:
    """``2ab / (a + b)``, 0 when both are 0 (CoOp's base-to-new summary)."""
    return 0.0 if a + b == 0 else 2.0 * a * b / (a + b)


def evaluate_predictions(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Lenient accuracy on base classes, on new classes and their harmonic mean.

    Each record has ``"prediction"`` (model output), ``"answer"`` (class name) and ``"split"`` (``"base"`` or
    ``"new"``; or ``meta["split"]``). Returns ``{"base", "new", "hm", "n_base", "n_new", "n_too_long"}``; a split
    without records has accuracy 0.0 and count 0 (accuracies are fractions in [0, 1]); ``n_too_long`` counts the
    predictions over the length cap (scored wrong).
    """
    hits = {"base": [0, 0], "new": [0, 0]}
    over_cap = 0
    for record in records:
        split = record.get("split") or (record.get("meta") or {}).get("split")
        if split not in hits:
            raise ValueError(f"record {record.get('id', '?')!r}: split must be 'base' or 'new', got {split!r}")
        if record.get("answer") is None or record.get("prediction") is None:
            raise ValueError(f"record {record.get('id', '?')!r}: needs 'prediction' and 'answer'")
        prediction = str(record["prediction"])
        over_cap += too_long(prediction)
        hits[split][0] += int(is_correct_lenient(prediction, str(record["answer"])))
        hits[split][1] += 1
    base = hits["base"][0] / hits["base"][1] if hits["base"][1] else 0.0
    new = hits["new"][0] / hits["new"][1] if hits["new"][1] else 0.0
    return {"base": base, "new": new, "hm": harmonic_mean(base, new), "n_base": float(hits["base"][1]),
            "n_new": float(hits["new"][1]), "n_too_long": float(over_cap)}


REWARD_PRESETS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "cls_rl": (("cls_accuracy", "cls_format"), (1.0, 1.0)),
    "nothink_cls_rl": (("cls_nothink_equality",), (1.0,)),
}
"""Reward names and weights of CLS-RL (thinking) and No-Thinking-CLS-RL."""


__all__ = ["REWARD_PRESETS", "cls_accuracy", "cls_format", "cls_nothink_equality", "evaluate_predictions",
           "extract_answer", "harmonic_mean", "is_correct_lenient", "is_think_answer_format", "parse_eval_answer"]
