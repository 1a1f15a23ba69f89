"""R-SFT "think" text from the solver's search trace (VGRP-Bench, Ren et al., arXiv 2503.23064).

VGRP-Bench's R-SFT targets serialise a solver's search: states visited, dead ends ("No solution found") and
backtracking. We render ``envs.vgrp.solver`` events as short English steps and cap their number.
"""

from __future__ import annotations

from envs.vgrp.core import Grid, Instance, Puzzle
from envs.vgrp.solver import Event, solve


def event_text(ev: Event) -> str:
    kind = ev[0]
    if kind == "place":
        _, r, c, v, cands = ev
        if len(cands) == 1:
            return f"({r},{c}) can only be {v}."
        return f"({r},{c}) could be {'/'.join(cands)}; try {v}."
    if kind == "dead":
        return f"({ev[1]},{ev[2]}) has no valid value: dead end."
    if kind == "undo":
        return f"Backtrack: remove {ev[3]} from ({ev[1]},{ev[2]})."
    if kind == "reject":
        return f"The board is full but breaks {', '.join(ev[1])}: backtrack."
    if kind == "solved":
        return "Every cell is filled and all rules hold."
    raise ValueError(f"unknown trace event {ev!r}")


def reasoning_target(puzzle: Puzzle, inst: Instance, max_steps: int = 200,
                     max_nodes: int | None = None) -> tuple[str, Grid, dict[str, bool]]:
    """(think text, answer grid, flags) for one instance.

    The answer is the solver's solution; if the node budget runs out first, the search so far is kept (marked as
    cut short) and the generator's known solution is the answer. ``max_nodes`` defaults to 2000 search nodes up to
    9x9 and 500 above (keeps R-SFT building under about a second per row at 12x12)."""
    if max_nodes is None:
        max_nodes = 2000 if inst.size <= 9 else 500
    res = solve(puzzle, inst, limit=1, max_nodes=max_nodes, record=True, max_trace=max_steps + 1)
    steps = [event_text(ev) for ev in res.trace[:max_steps]]
    truncated = len(res.trace) > max_steps or res.solution is None
    head = "Fill cells one at a time, always choosing the cell with the fewest valid values."
    if truncated:
        steps.append("... (search shortened) The remaining cells follow from the rules.")
    think = " ".join([head] + steps)
    answer = res.solution if res.solution is not None else inst.solution
    return think, answer, {"think_truncated": truncated, "solver_solved": res.solution is not None}
