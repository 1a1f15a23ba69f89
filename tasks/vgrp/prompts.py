"""Prompts and SFT targets for VGRP-Bench puzzles (Ren et al., arXiv 2503.23064).

The prompt follows VGRP's layout: a role ("You are a <puzzle> player"), the rules, "Indexing starts at 0", the
request to read the current game state with ``*`` for empty cells, and the JSON answer format with
``perception``, ``think`` and ``answer``. With an image the board is only in the image (VGRP's vision mode);
without one the text rendering of the board and its clues is included (VGRP's text mode).

Grids are written in one of :data:`GRID_STYLES`: ``lists`` (VGRP's literal 2-D list of strings, about 12 tokens per
4x4 row with the tiny BPE tokenizer), ``rows`` (each row one string, ``"*3*2"``, or ``"* 3 * 2"`` when a row of
single characters would not read back; about 6 tokens per 4x4 row) or ``spaced`` (each row one string with the
cells separated by spaces, ``"* 3 * 2"``: the text board's own lines, so perception is a plain copy; about 8
tokens per 4x4 row). All are read by VGRP-compatible parsing (:func:`envs.vgrp.answer.to_grid` accepts rows
written as strings); the row styles halve the answer's length, which is what lets the tiny study models learn the
format in a few hundred steps (docs/vgrp.md, *Study*).
"""

from __future__ import annotations

import json

from envs.vgrp.answer import to_grid
from envs.vgrp.core import Grid, Instance, Puzzle
from envs.vgrp.render import render_text

FORMATS = ("solution", "reasoning")
GRID_STYLES = ("lists", "rows", "spaced")


def _check_style(grid_style: str) -> None:
    if grid_style not in GRID_STYLES:
        raise ValueError(f"grid_style={grid_style!r}: expected one of {GRID_STYLES}")


def grid_rows(grid: Grid, spaced: bool = False) -> list[str]:
    """``grid`` as one string per row: cells joined with single spaces when ``spaced``, else without spaces when
    that reads back to the same row (:func:`~envs.vgrp.answer.to_grid`) and with spaces otherwise (multi-character
    cells such as ``10``)."""
    out = []
    for row in grid:
        tight = "".join(row)
        out.append(tight if not spaced and to_grid([tight]) == [list(row)] else " ".join(row))
    return out


def build_prompt(puzzle: Puzzle, inst: Instance, fmt: str = "solution", with_image: bool = True,
                 grid_style: str = "lists") -> str:
    """The user prompt for one instance; ``fmt`` picks S-SFT (``solution``) or R-SFT (``reasoning``) wording,
    ``grid_style`` the grid layout the reply is asked for."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: expected one of {FORMATS}")
    _check_style(grid_style)
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
    grid = "[[...]]" if grid_style == "lists" else '["<row 0>", ...]'
    if grid_style != "lists":
        example = "* 1 * 2" if grid_style == "spaced" else "*1*2"
        lines.append(f"Write each row as one string of its cells, e.g. \"{example}\".")
    think = ('"think": "<step-by-step reasoning, including dead ends and backtracking>", '
             if fmt == "reasoning" else "")
    lines.append(f'Reply with JSON only: {{"perception": {grid}, {think}"answer": {grid}}}')
    return "\n".join(lines)


def build_target(inst: Instance, answer: Grid, think: str | None = None, grid_style: str = "lists") -> str:
    """The assistant target: perception (the initial board) [+ think] + answer, as compact JSON with grids in
    ``grid_style``."""
    _check_style(grid_style)
    layout = (lambda g: g) if grid_style == "lists" else (lambda g: grid_rows(g, grid_style == "spaced"))
    obj: dict[str, object] = {"perception": layout(inst.board)}
    if think is not None:
        obj["think"] = think
    obj["answer"] = layout(answer)
    return json.dumps(obj, separators=(", ", ": "))
