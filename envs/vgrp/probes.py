"""The two VGRP-Bench diagnostic probes (Ren et al., arXiv 2503.23064): cell-level perception ("what is at cell
(r, c)?", VGRP's ``*_cell_at.json``) and step-level rule following ("would placing X at (r, c) break the rules?",
VGRP's ``*_valid_action.json``).

A move "breaks the rules" here when the puzzle's local consistency check (``Puzzle.partial_ok``) fails on the
initial board plus that one placement: a repeated digit, an exceeded or unreachable count, touching objects, an
unfillable sum, and so on. Cells not yet filled are treated as unknown, never as wrong.
"""

from __future__ import annotations

import random
from typing import Any

from envs.vgrp.core import EMPTY, Instance, Puzzle
from envs.vgrp.solver import start_grid


def cell_at_probe(puzzle: Puzzle, inst: Instance, rng: random.Random) -> dict[str, Any]:
    """Ask for the content of one cell of the initial board; ``answer`` is one of ``choices``."""
    n = inst.size
    r, c = rng.randrange(n), rng.randrange(n)
    present = {x for row in inst.board for x in row}
    choices = sorted(present | {EMPTY} | set(puzzle.symbols(n)) - {"e"}, key=lambda x: (len(x), x))
    question = (f"What is at cell ({r},{c}) of the {puzzle.title} board (row {r}, column {c}, indexing from 0)? "
                f"Choose one of {{{', '.join(choices)}}}; '*' means the cell is empty.")
    return {"probe": "cell_at", "cell": [r, c], "question": question, "choices": choices, "answer": inst.board[r][c]}


def valid_move_probe(puzzle: Puzzle, inst: Instance, rng: random.Random) -> dict[str, Any]:
    """Ask whether one placement on the initial board breaks a rule; ``answer`` is ``"yes"`` or ``"no"``."""
    n = inst.size
    free = [(r, c) for r in range(n) for c in range(n) if puzzle.fixed(r, c, inst) is None]
    if not free:
        raise ValueError(f"{puzzle.name} instance seed={inst.seed} has no free cell to ask about")
    r, c = rng.choice(free)
    symbols = puzzle.cell_domain(r, c, inst)
    value = inst.solution[r][c] if rng.random() < 0.5 else rng.choice(symbols)
    g = start_grid(puzzle, inst)
    g[r][c] = value
    breaks = not puzzle.partial_ok(g, r, c, inst)
    question = (f"On the current {puzzle.title} board, would placing '{value}' at cell ({r},{c}) (row {r}, column "
                f"{c}, indexing from 0) break the rules? Answer yes or no.")
    return {"probe": "valid_move", "cell": [r, c], "value": value, "question": question,
            "answer": "yes" if breaks else "no"}
