"""Prompts and SFT targets for VGRP-Bench puzzles (Ren et al., arXiv 2503.23064).

The prompt follows VGRP's layout: a role ("You are a <puzzle> player"), the rules, "Indexing starts at 0", the
request to read the current game state with ``*`` for empty cells, and the JSON answer format with
``perception``, ``think`` and ``answer``. With an image the board is only in the image (VGRP's vision mode);
without one the text rendering of the board and its clues is included (VGRP's text mode).
"""

from __future__ import annotations

import json

from envs.vgrp.core import Grid, Instance, Puzzle
from envs.vgrp.render import render_text

FORMATS = ("solution", "reasoning")


def build_prompt(puzzle: Puzzle, inst: Instance, fmt: str = "solution", with_image: bool = True) -> str:
    """The user prompt for one instance; ``fmt`` picks S-SFT (``solution``) or R-SFT (``reasoning``) wording."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: expected one of {FORMATS}")
    n = inst.size
    lines = [
        f"You are a {puzzle.title} player. Solve the {n}x{n} puzzle.",
        f"Rules: {puzzle.rules}",
        "Indexing starts at 0: cell (r, c) is row r (top to bottom) and column c (left to right).",
    ]
    if with_image:
        lines.append("The image shows the current game state, including all clues.")
    else:
        lines.append("The current game state:")
        lines.append(render_text(puzzle, inst))
    lines.append(
        "First read the current board as a 2-D list of strings (perception), using '*' for empty cells and the "
        "symbols shown on the board for filled ones. Then give the solved board (answer) as a 2-D list using: "
        f"{puzzle.legend}.")
    if fmt == "reasoning":
        lines.append('Reply with JSON only: {"perception": [[...]], "think": "<step-by-step reasoning, including '
                     'dead ends and backtracking>", "answer": [[...]]}')
    else:
        lines.append('Reply with JSON only: {"perception": [[...]], "answer": [[...]]}')
    return "\n".join(lines)


def build_target(inst: Instance, answer: Grid, think: str | None = None) -> str:
    """The assistant target: perception (the initial board) [+ think] + answer, as compact JSON."""
    obj: dict[str, object] = {"perception": inst.board}
    if think is not None:
        obj["think"] = think
    obj["answer"] = answer
    return json.dumps(obj, separators=(", ", ": "))
