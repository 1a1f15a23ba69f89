"""Tolerant reader of VGRP-Bench answers (Ren et al., arXiv 2503.23064) and perception scoring.

VGRP-Bench asks for JSON ``{"perception": [[...]], "think": "...", "answer": [[...]]}`` and normalises model
outputs with a GPT-4o few-shot formatter. This module replaces that formatter with deterministic rules: fenced or
bare JSON, Python-literal dicts, single quotes and trailing commas, alternative keys (``Initial State``,
``Solution``, ``Thought``), the formatter's own ``Perception\\n[[..]]\\nAnswer\\n[[..]]`` layout, nested
``[["2"]]`` cells and rows written as strings. Every call reports a status, so unparsable text is counted.

Responses are hostile input: :func:`parse_response` never raises, a text over
:data:`~envs.verdict.MAX_RESPONSE_CHARS` is not read (status ``too_long``), JSON or Python literals nesting deeper
than :data:`MAX_NESTING` are skipped, and every step is linear in the text's length (``<think>`` blocks are cut with
``str.find``, not a lazy regex that rescans the rest of the text for every unclosed tag).
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from envs.verdict import MAX_RESPONSE_CHARS, TOO_LONG
from envs.vgrp.core import EMPTY, Grid, Instance, Puzzle

PERCEPTION_KEYS = ("perception", "initial state", "initial_state", "initialstate", "board", "current state",
                   "state", "game state")
ANSWER_KEYS = ("answer", "solution", "final answer", "final_answer", "final solution", "final_solution")
THINK_KEYS = ("think", "thought", "thoughts", "reasoning", "thinking")

STATUSES = ("ok", "answer_only", "perception_only", "no_grid", "no_json", "empty", TOO_LONG)
MAX_NESTING = 16
"""Deepest bracket nesting read as JSON / a Python literal (an answer needs 3: object, grid, row)."""


@dataclass
class ParsedResponse:
    """Grids read from a model response; ``status`` is one of ``STATUSES``."""

    perception: Grid | None
    answer: Grid | None
    think: str | None
    status: str

    @property
    def parse_ok(self) -> bool:
        return self.answer is not None


def _cell(x: Any) -> str:
    while isinstance(x, (list, tuple)) and len(x) == 1:
        x = x[0]
    if x is None:
        return EMPTY
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return str(x).strip()


def to_grid(x: Any) -> Grid | None:
    """A square-ish 2-D grid of strings from a nested list or a list of row strings; None if not a grid."""
    if isinstance(x, str):
        x = _load(x)
    if not isinstance(x, (list, tuple)) or not x:
        return None
    rows: Grid = []
    for row in x:
        if isinstance(row, str):
            parts = [p for p in re.split(r"[\s,|]+", row.strip()) if p]
            if len(parts) == 1 and len(parts[0]) > 1 and re.fullmatch(r"[0-9*.]+|[sewb*._-]+", parts[0]):
                parts = list(parts[0])
            rows.append([_cell(p) for p in parts])
        elif isinstance(row, (list, tuple)):
            rows.append([_cell(c) for c in row])
        else:
            return None
    return rows


def _nesting(s: str) -> int:
    """Deepest bracket nesting of ``s`` (brackets inside strings counted too: an upper bound)."""
    depth = deepest = 0
    for ch in s:
        if ch in "[{(":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in "]})" and depth:
            depth -= 1
    return deepest


def _load(s: str) -> Any:
    s = s.strip()
    if not s or len(s) > MAX_RESPONSE_CHARS or _nesting(s) > MAX_NESTING:
        return None
    for attempt in (s, re.sub(r",\s*([\]}])", r"\1", s)):
        try:
            return json.loads(attempt)
        except (ValueError, RecursionError):
            pass
        if attempt[0] not in "[({\"'":  # only a bracketed or quoted literal can become a grid; parsing a bare
            continue                     # "1,1,1,..." as a 32k-tuple costs up to seconds of CPU for nothing
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # odd escapes in model text are not our warnings
                return ast.literal_eval(attempt)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError, OverflowError):
            pass
    return None


def _balanced_spans(text: str, open_ch: str, close_ch: str, first_only: bool = False) -> list[str]:
    """Top-level balanced ``open_ch ... close_ch`` spans, ignoring brackets inside JSON strings (one pass)."""
    spans, depth, start, in_str, esc, quote = [], 0, -1, False, False, ""
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == quote:
                in_str = False
            continue
        if ch == '"' and depth:
            in_str, quote = True, ch
        elif ch == open_ch:
            if depth == 0:
                start = i
            depth += 1
        elif ch == close_ch and depth:
            depth -= 1
            if depth == 0:
                spans.append(text[start:i + 1])
                if first_only:
                    break
    return spans


def _find_key(d: dict, keys: tuple[str, ...]) -> Any:
    low = {re.sub(r"[\s_]+", " ", str(k).strip().lower()): v for k, v in d.items()}
    for k in keys:
        k2 = re.sub(r"[\s_]+", " ", k)
        if k2 in low:
            return low[k2]
    return None


def _labelled_grid(text: str, keys: tuple[str, ...]) -> Grid | None:
    for key in keys:
        m = re.search(re.escape(key) + r"\W{0,20}?(\[)", text, flags=re.IGNORECASE)
        if m:
            spans = _balanced_spans(text[m.start(1):], "[", "]", first_only=True)
            if spans:
                g = to_grid(spans[0])
                if g is not None:
                    return g
    return None


def strip_think(text: str) -> str:
    """``text`` without its ``<think>...</think>`` blocks (an unclosed ``<think>`` and what follows it are kept)."""
    parts: list[str] = []
    pos = 0
    while True:
        start = text.find("<think>", pos)
        if start < 0:
            break
        end = text.find("</think>", start + len("<think>"))
        if end < 0:  # no later <think> can be closed either
            break
        parts.append(text[pos:start])
        pos = end + len("</think>")
    parts.append(text[pos:])
    return "".join(parts)


def parse_response(text: Any) -> ParsedResponse:
    """Read perception, think and answer from a model response (never raises; linear in the text's length)."""
    if isinstance(text, dict):
        obj: Any = text
    elif not isinstance(text, str) or not text.strip():
        return ParsedResponse(None, None, None, "empty")
    elif len(text) > MAX_RESPONSE_CHARS:
        return ParsedResponse(None, None, None, TOO_LONG)
    else:
        obj = None
        body = strip_think(text)
        fenced = re.findall(r"```(?:json|python)?\s*(.*?)```", body, flags=re.DOTALL)
        for cand in fenced + _balanced_spans(body, "{", "}")[::-1]:
            loaded = _load(cand)
            if isinstance(loaded, dict):
                obj = loaded
                break
    if isinstance(obj, dict):
        perception = to_grid(_find_key(obj, PERCEPTION_KEYS))
        answer = to_grid(_find_key(obj, ANSWER_KEYS))
        think = _find_key(obj, THINK_KEYS)
        think = None if think is None else str(think)
    else:
        if not isinstance(text, str):
            return ParsedResponse(None, None, None, "empty")
        perception = _labelled_grid(text, PERCEPTION_KEYS)
        answer = _labelled_grid(text, ANSWER_KEYS)
        think = None
        if perception is None and answer is None:
            return ParsedResponse(None, None, None, "no_json")
    if perception is not None and answer is not None:
        status = "ok"
    elif answer is not None:
        status = "answer_only"
    elif perception is not None:
        status = "perception_only"
    else:
        status = "no_grid"
    return ParsedResponse(perception, answer, think, status)


def normalize_board(puzzle: Puzzle, grid: Grid) -> Grid:
    empties = puzzle.perception_empty()
    return [[EMPTY if str(x).strip().lower() in empties else str(x).strip().lower() for x in row] for row in grid]


def perception_correct(puzzle: Puzzle, perceived: Grid | None, inst: Instance) -> bool:
    """VGRP perception score: the perceived initial board equals the true one in every cell (0/*/e = empty)."""
    if perceived is None or len(perceived) != inst.size or any(len(r) != inst.size for r in perceived):
        return False
    return normalize_board(puzzle, perceived) == normalize_board(puzzle, inst.board)
