"""The verifiable reward of the RedOne 2.0 recipe's toy task: 1 when the completion's first known answer word is the
sample's answer, else 0 (:func:`tasks.data_selection.world.answer_word`, linear time on any string)."""

from __future__ import annotations

from typing import Any, Sequence

from mmsft.rewards import register_reward
from tasks.data_selection.world import answer_word


@register_reward("redone_answer")
def redone_answer(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[float]:
    out = []
    for sample, text in zip(samples, completions):
        truth = str(sample.answer).strip().lower() if sample.answer is not None else None
        out.append(1.0 if truth and answer_word(text) == truth else 0.0)
    return out
