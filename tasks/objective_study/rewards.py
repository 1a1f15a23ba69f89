"""Reward of the objective study: exact match of the completion's first word with the one-word answer."""

from __future__ import annotations

from typing import Any, Sequence

from mmsft.rewards import register_reward


def first_word(text: str, limit: int = 64) -> str:
    """The first whitespace-separated word of ``text`` (only its first ``limit`` characters are looked at), lowercased
    and stripped of punctuation around it."""
    words = text[:limit].split()
    return words[0].strip(".,;:!?\"'()[]{}<>").lower() if words else ""


@register_reward("study_exact")
def study_exact(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[float]:
    """1 if the first word of the completion equals the sample's answer (case-insensitive), else 0."""
    return [float(first_word(c) == str(getattr(s, "answer", "")).strip().lower()) for s, c in zip(samples, completions)]
