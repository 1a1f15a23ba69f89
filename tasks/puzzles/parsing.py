"""Tolerant parsers for model outputs with a counted outcome for unparsable text.

Sokoban actions: the last ``<answer>...</answer>`` block (RAGEN / debunk format, ``Right || Right || Up``), or an
``Answer:`` line, or the text after ``</think>``; pieces split on ``||``, commas, semicolons, ``->``, newlines and
whitespace; matched case-insensitively (emoji variation selectors and surrounding punctuation ignored) against the
example's action vocabulary. General Points answers: a JSON object (fenced, inside ``<answer>``, single-quoted or
with trailing commas) with a ``formula`` key, else a ``formula: ...`` line, else a bare formula.

Every parse returns a :class:`ParseResult` whose ``outcome`` is one of :data:`OUTCOMES`; :class:`ParseStats` counts
them so that "the model wrote something unparsable" is a number in the report, never a silent no-op.

Responses are hostile input: a text over :data:`~envs.verdict.MAX_RESPONSE_CHARS` is not read (outcome
``too_long``), every pattern is linear in the text's length (no regex that rescans a run once per start), JSON that
nests deeper than the stack or holds a 4,301+-digit number is ``bad_json``, and only ASCII ``0-9`` are digits.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from envs.verdict import MAX_RESPONSE_CHARS, TOO_LONG

OUTCOMES = ("ok", "empty", "too_long", "unknown_action", "too_many_actions", "no_json", "bad_json", "missing_formula")

_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.IGNORECASE | re.DOTALL)
# one attempt per line start; horizontal whitespace only before the colon, so a run of blank lines is scanned once
_ANSWER_LINE = re.compile(r"^[^\S\n]*(?:final[^\S\n]+)?(?:answer|action|actions)[^\S\n]*[:=]\s*(.+)",
                          re.IGNORECASE | re.MULTILINE)
_THINK_END = re.compile(r"</think>", re.IGNORECASE)
_ACTION_TAG = re.compile(r"<action>(.*?)(?:</action>|$)", re.IGNORECASE | re.DOTALL)
_SPLIT = re.compile(r"\|\||->|[,;\n|]")
_STRIP = " \t\r\"'`.!:()[]{}<>"


@dataclass(frozen=True)
class ParseResult:
    """Parsed value (action ids or an answer dict), whether parsing succeeded, and the counted outcome."""

    value: Any
    ok: bool
    outcome: str
    detail: str = ""


@dataclass
class ParseStats:
    """Counter of parse outcomes (``ok``, ``empty``, ``unknown_action``, ...)."""

    counts: Counter = field(default_factory=Counter)

    def add(self, result: ParseResult) -> ParseResult:
        self.counts[result.outcome] += 1
        return result

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def unparsable(self) -> int:
        return self.total - self.counts["ok"]

    def as_dict(self) -> dict:
        return {"total": self.total, "unparsable": self.unparsable, **{k: self.counts[k] for k in sorted(self.counts)}}


def _norm(token: str) -> str:
    return token.replace("\ufe0f", "").strip(_STRIP).casefold()


def answer_region(text: str) -> str:
    """The part of a response that holds the answer (tag, ``Answer:`` line, or text after ``</think>``)."""
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return tags[-1]
    tags = _ACTION_TAG.findall(text)
    if tags:
        return tags[-1]
    last_think = None
    for last_think in _THINK_END.finditer(text):
        pass
    if last_think is not None:
        text = text[last_think.end():]
    lines = _ANSWER_LINE.findall(text)
    if lines:
        return lines[-1]
    return text


def _too_long(text: str) -> ParseResult | None:
    if len(text) > MAX_RESPONSE_CHARS:
        return ParseResult(None, False, TOO_LONG, f"{len(text)} > {MAX_RESPONSE_CHARS} characters")
    return None


def parse_actions(text: str, names: Sequence[str], max_actions: int | None = None) -> ParseResult:
    """Parse Sokoban actions from model text into ids (index into ``names``: Up, Down, Left, Right order)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_actions expects the response text (str), got {type(text).__name__}")
    if (capped := _too_long(text)) is not None:
        return ParseResult([], False, capped.outcome, capped.detail)
    lookup = {_norm(n): i for i, n in enumerate(names)}
    if len(lookup) != len(names):
        raise ValueError(f"action names {list(names)} are not distinct after normalisation")
    region = answer_region(text)
    actions: list[int] = []
    for piece in _SPLIT.split(region):
        piece = piece.strip()
        if not piece:
            continue
        key = _norm(piece)
        if key in lookup:
            actions.append(lookup[key])
            continue
        words = [w for w in piece.split() if _norm(w)]
        if words and all(_norm(w) in lookup for w in words):
            actions.extend(lookup[_norm(w)] for w in words)
            continue
        return ParseResult(actions, False, "unknown_action", piece[:40])
    if not actions:
        return ParseResult([], False, "empty")
    if max_actions is not None and len(actions) > max_actions:
        return ParseResult(actions[:max_actions], False, "too_many_actions", f"{len(actions)} > {max_actions}")
    return ParseResult(actions, True, "ok")


_DIGITS = frozenset("0123456789")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.IGNORECASE | re.DOTALL)
_FORMULA_LINE = re.compile(r"formula\"?'?\s*[:=]\s*\"?'?([^\"'\n}]+)", re.IGNORECASE)


def _json_candidates(text: str) -> list[str]:
    out = [m for m in _FENCE.findall(text)]
    tags = _ANSWER_TAG.findall(text)
    out.extend(tags)
    depth, start = 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0 and start is not None:
                out.append(text[start:i + 1])
    return out


def _loads(blob: str) -> Any:
    """``json.loads`` whose every failure is a ``JSONDecodeError`` (also too deep nesting and 4,301+-digit ints)."""
    try:
        return json.loads(blob)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise json.JSONDecodeError(f"unreadable JSON ({type(exc).__name__})", blob[:40], 0) from None


def _loads_lenient(blob: str) -> Any:
    blob = blob.strip()
    try:
        return _loads(blob)
    except json.JSONDecodeError:
        pass
    fixed = re.sub(r",\s*([}\]])", r"\1", blob)
    fixed = re.sub(r"(?<![A-Za-z])'([^']*)'", r'"\1"', fixed)
    return _loads(fixed)


def _left_of_equals(formula: str) -> str:
    """``"3*8 = 24"`` -> ``"3*8"`` (models often restate the target)."""
    return formula.split("=")[0].strip()


def parse_gp_answer(text: str) -> ParseResult:
    """Parse a General Points answer into a dict with ``formula`` (and ``cards``/``number`` when given)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_gp_answer expects the response text (str), got {type(text).__name__}")
    if (capped := _too_long(text)) is not None:
        return capped
    if not text.strip():
        return ParseResult(None, False, "empty")
    saw_json = False
    for blob in reversed(_json_candidates(text)):
        if "{" not in blob:
            continue
        start, end = blob.find("{"), blob.rfind("}")
        saw_json = True
        try:
            data = _loads_lenient(blob[start:end + 1])
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            if "formula" not in data:
                return ParseResult(data, False, "missing_formula")
            if isinstance(data["formula"], str):
                data["formula"] = _left_of_equals(data["formula"])
            return ParseResult(data, True, "ok")
    match = _FORMULA_LINE.findall(text)
    if match:
        return ParseResult({"formula": _left_of_equals(match[-1])}, True, "ok")
    region = answer_region(text).strip()
    if re.fullmatch(r"[0-9\s+\-*/×÷xX()\[\]=.]+", region) and any(c in _DIGITS for c in region):
        return ParseResult({"formula": region.split("=")[0].strip()}, True, "ok")
    return ParseResult(None, False, "bad_json" if saw_json else "no_json")
