"""VideoRFT's rewards (arXiv 2505.12434, code QiWang98/VideoRFT ``grpo.py``; the same accuracy and length rules as
Video-R1, arXiv 2503.21776), registered in mmsft's reward registry.

* ``videorft_accuracy`` — by ``problem_type`` on the ``<answer>`` texts of completion and solution (:mod:`answers`):
  multiple choice: exact match; numerical: both or neither contain ``.`` or ``,``, then ``round(x, 2)`` equality
  (commas removed); OCR: ``1 − WER`` clipped to [0, 1] (word-level, ``jiwer``; an empty reference gives WER = the
  number of hypothesis words, as the reference code's edit-distance table does); free-form: mean of the ROUGE-1, -2
  and -L F-measures with the Porter stemmer (``rouge-score``), clipped; regression:
  ``1 − min(1, (|p − g| + 1e-9) / (|g| + 1e-9))``. An answer that is not a number scores 0 on the number types.
* ``videorft_format`` — 1 iff the completion fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>``.
* ``videorft_length`` — the ``len_control`` bonus: within a group (the completions of one prompt), if at least two
  have accuracy > 0.1, each of those whose completion is 320–512 tokens long gets +0.2. Token counts come from the
  ``completion_lengths`` column the RL producers pass; without it (a custom loop) whitespace-separated words are
  counted instead.

Ground truth: a ``solution`` column if given, else ``sample.meta["solution"]``, else ``sample.answer``; the problem
type: a ``problem_type`` column, else ``sample.meta["problem_type"]``, else ``"free-form"`` (documented default for
rows that do not come from the released formats). Completions over
:data:`~envs.verdict.MAX_RESPONSE_CHARS` characters score 0 on every reward here. Every function is total and linear
in the completion's length.
"""

from __future__ import annotations

from typing import Any, Sequence

from envs.verdict import too_long
from mmsft.rewards import register_reward
from tasks.video.answers import extract_answer, is_think_answer_format, parse_number

LENGTH_BONUS = 0.2
LENGTH_RANGE = (320, 512)
ACCURACY_GATE = 0.1
"""Accuracy above which a completion counts as correct for the length bonus and T-GRPO."""


def _wer(reference: str, hypothesis: str) -> float:
    import jiwer

    ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return float(len(hyp))
    if not hyp:
        return 1.0
    return float(jiwer.wer(" ".join(ref), " ".join(hyp)))


_ROUGE: Any = None


def _rouge(reference: str, hypothesis: str) -> float:
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = _ROUGE.score(reference, hypothesis)
    return (scores["rouge1"].fmeasure + scores["rouge2"].fmeasure + scores["rougeL"].fmeasure) / 3


def _has_decimal(text: str) -> bool:
    return "." in text or "," in text


def score_answer(problem_type: str, output: str, truth: str) -> float:
    """VideoRFT's accuracy of one extracted answer ``output`` against the extracted ground truth ``truth``."""
    if problem_type == "multiple choice":
        return 1.0 if output.strip() == truth.strip() else 0.0
    if problem_type == "numerical":
        if _has_decimal(truth) != _has_decimal(output):
            return 0.0
        gt, out = parse_number(truth), parse_number(output)
        return 1.0 if gt is not None and out is not None and round(gt, 2) == round(out, 2) else 0.0
    if problem_type == "OCR":
        return max(0.0, min(1.0, 1.0 - _wer(truth, output)))
    if problem_type == "free-form":
        return max(0.0, min(1.0, _rouge(truth, output)))
    if problem_type == "regression":
        gt, out = parse_number(truth), parse_number(output)
        if gt is None or out is None:
            return 0.0
        return 1.0 - min(1.0, max(0.0, (abs(out - gt) + 1e-9) / (abs(gt) + 1e-9)))
    return 0.0


def mean_relative_accuracy(prediction: float | None, truth: float) -> float:
    """MRA (VSI-Bench; VideoRFT's regression evaluation): mean over θ ∈ {0.50, 0.55, …, 0.95} of
    ``|p − g| / |g| < 1 − θ``; 0 for a non-number."""
    if prediction is None:
        return 0.0
    error = abs(prediction - truth) / abs(truth) if truth != 0 else (0.0 if prediction == 0 else float("inf"))
    thresholds = [0.50 + 0.05 * k for k in range(10)]
    return sum(error < 1.0 - theta for theta in thresholds) / len(thresholds)


def _column(columns: dict[str, Any], key: str, index: int) -> Any:
    value = columns.get(key)
    if isinstance(value, (list, tuple)) and index < len(value):
        return value[index]
    return None


def ground_truth(sample: Any, index: int, columns: dict[str, Any]) -> tuple[str, str]:
    """(problem type, extracted ground-truth answer) of one sample (see the module docstring)."""
    meta = getattr(sample, "meta", None) or {}
    problem_type = _column(columns, "problem_type", index) or meta.get("problem_type") or "free-form"
    solution = _column(columns, "solution", index)
    if solution is None:
        solution = meta.get("solution")
    if solution is None:
        answer = getattr(sample, "answer", None)
        return str(problem_type), ("" if answer is None else str(answer).strip())
    solution = str(solution)
    return str(problem_type), extract_answer(solution) if "<answer>" in solution else solution.strip()


def accuracy_values(samples: Sequence[Any], completions: Sequence[str], columns: dict[str, Any]) -> list[float]:
    out = []
    for index, (sample, text) in enumerate(zip(samples, completions)):
        if too_long(text):
            out.append(0.0)
            continue
        problem_type, truth = ground_truth(sample, index, columns)
        out.append(score_answer(problem_type, extract_answer(text), truth))
    return out


@register_reward("videorft_accuracy")
def videorft_accuracy(samples: Sequence[Any], completions: Sequence[str], **columns: Any) -> list[float]:
    """VideoRFT / Video-R1 accuracy by problem type (see the module docstring)."""
    return accuracy_values(samples, completions, columns)


@register_reward("videorft_format")
def videorft_format(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[float]:
    """1.0 iff the completion is exactly ``<think>...</think>`` then ``<answer>...</answer>``."""
    return [float(not too_long(text) and is_think_answer_format(text)) for text in completions]


def groups_of(samples: Sequence[Any], count: int) -> list[list[int]]:
    """Indices of consecutive completions of one prompt (same sample object or id): the GRPO groups of a batch."""
    groups: list[list[int]] = []
    previous: Any = object()
    for index in range(count):
        sample = samples[index] if index < len(samples) else None
        key = (id(sample), getattr(sample, "id", None))
        if groups and (key == previous or (key[1] is not None and key[1] == previous[1])):
            groups[-1].append(index)
        else:
            groups.append([index])
        previous = key
    return groups


def length_bonus(accuracies: Sequence[float], lengths: Sequence[int], groups: list[list[int]]) -> list[float]:
    """VideoRFT's ``len_control``: +0.2 for each completion of 320–512 tokens whose accuracy is > 0.1, in groups
    where at least two completions have accuracy > 0.1."""
    out = [0.0] * len(accuracies)
    low, high = LENGTH_RANGE
    for members in groups:
        correct = [i for i in members if accuracies[i] > ACCURACY_GATE]
        if len(correct) > 1:
            for i in correct:
                if low <= lengths[i] <= high:
                    out[i] = LENGTH_BONUS
    return out


@register_reward("videorft_length")
def videorft_length(samples: Sequence[Any], completions: Sequence[str], completion_lengths: Sequence[int] | None = None,
                    **columns: Any) -> list[float]:
    """The length bonus (see :func:`length_bonus`); token counts from ``completion_lengths`` (else word counts)."""
    accuracies = accuracy_values(samples, completions, columns)
    if completion_lengths is not None and len(completion_lengths) == len(completions):
        lengths = [int(n) for n in completion_lengths]
    else:
        lengths = [0 if too_long(text) else len(text.split()) for text in completions]
    return length_bonus(accuracies, lengths, groups_of(samples, len(completions)))


REWARD_PRESETS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "videorft": (("videorft_accuracy", "videorft_format", "videorft_semantic", "videorft_length"), (1, 1, 1, 1)),
    "videorft_no_semantic": (("videorft_accuracy", "videorft_format", "videorft_length"), (1, 1, 1)),
}
"""VideoRFT's total reward (accuracy + format + semantic + length bonus) and the ablation without the semantic term."""

__all__ = ["ACCURACY_GATE", "LENGTH_BONUS", "LENGTH_RANGE", "REWARD_PRESETS", "accuracy_values", "ground_truth",
           "groups_of", "length_bonus", "mean_relative_accuracy", "score_answer", "videorft_accuracy",
           "videorft_format", "videorft_length"]
