"""Reading model text the way VideoRFT (arXiv 2505.12434) and Video-R1 (arXiv 2503.21776) read it, in linear time.

* :func:`extract_answer` is ``re.search(r"<answer>\\s*(.*?)\\s*</answer>", text, re.DOTALL).group(1).strip()``,
  ``""`` without a match (the papers' ``extract_answer``), written with ``str.find``: the lazy regex rescans the rest
  of the text for every unclosed ``<answer>`` (quadratic on hostile text), the rewrite gives the same result.
* :func:`extract_think` is ``<think>(.*?)</think>`` (DOTALL), None without a match.
* :func:`parse_number` is the papers' ``normalize_number`` (commas removed, then a float) restricted to ASCII decimal
  syntax of at most :data:`MAX_NUMBER_CHARS` characters and finite values: Python's ``float`` also reads ``"nan"``,
  ``"inf"``, ``"1_0"`` and Arabic-Indic digits, and the reference regression reward gives ``"nan"`` full marks
  (``max(0.0, nan)`` is 0.0). Such answers are not numbers here.
"""

from __future__ import annotations

import math
import re

_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_THINK_THEN_ANSWER = re.compile(r"</think>\s*<answer>")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
MAX_NUMBER_CHARS = 64
"""Longest answer read as a number (a 5,000-digit "number" is not an answer)."""


def _between(text: str, open_tag: str, close_tag: str) -> str | None:
    start = text.find(open_tag)
    if start < 0:
        return None
    end = text.find(close_tag, start + len(open_tag))
    return None if end < 0 else text[start + len(open_tag):end]


def extract_answer(text: str) -> str:
    """Text inside the first ``<answer>...</answer>``, stripped; ``""`` when there is none (as both papers)."""
    inner = _between(text, _ANSWER_OPEN, _ANSWER_CLOSE)
    return "" if inner is None else inner.strip()


def has_answer_tags(text: str) -> bool:
    return _between(text, _ANSWER_OPEN, _ANSWER_CLOSE) is not None


def extract_think(text: str) -> str | None:
    """Text inside the first ``<think>...</think>`` (not stripped), None when there is none."""
    return _between(text, _THINK_OPEN, _THINK_CLOSE)


def is_think_answer_format(text: str) -> bool:
    """Whether ``text`` fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL) — the format reward
    of both papers (and of R1-V / CLS-RL) — in linear time: it starts with ``<think>``, ends with ``</answer>`` and
    holds ``</think>``, whitespace, ``<answer>`` in between."""
    if not (text.startswith(_THINK_OPEN) and text.endswith(_ANSWER_CLOSE)):
        return False
    return _THINK_THEN_ANSWER.search(text, len(_THINK_OPEN), len(text) - len(_ANSWER_CLOSE)) is not None


def parse_number(text: str) -> float | None:
    """The papers' ``normalize_number``: commas removed, then a finite float written in ASCII decimal syntax."""
    text = text.replace(",", "").strip()
    if not text or len(text) > MAX_NUMBER_CHARS or _NUMBER.fullmatch(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


__all__ = ["MAX_NUMBER_CHARS", "extract_answer", "extract_think", "has_answer_tags", "is_think_answer_format",
           "parse_number"]
