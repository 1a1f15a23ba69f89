"""Generic backtracking solver for the VGRP-Bench puzzles (Ren et al., arXiv 2503.23064) with a search trace.

VGRP-Bench describes R-SFT targets as a serialisation of a solver's search: cells tried, dead ends and
backtracking. This solver does depth-first search with the minimum-remaining-values heuristic over each puzzle's
``cell_domain`` and ``partial_ok`` hooks, checks complete grids with ``rule_violations``, and records events:

- ``("place", r, c, v, cands)``: write ``v`` at (r, c); ``cands`` were the candidates left (one: forced)
- ``("dead", r, c)``: cell (r, c) has no candidate left, so the current branch is a dead end
- ``("undo", r, c, v)``: take ``v`` back from (r, c) (backtracking)
- ``("reject", rules)``: the grid is full but breaks the listed rules
- ``("solved",)``
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from envs.vgrp.instance import EMPTY, Grid, Instance

Event = tuple


class PuzzleHooks(Protocol):
    """The hooks of :class:`envs.vgrp.core.Puzzle` the solver uses (declared here so the solver needs only the
    instance types, and ``core`` can import the solver for ``generate(unique=True)``)."""

    def fixed(self, r: int, c: int, inst: Instance) -> str | None: ...

    def cell_domain(self, r: int, c: int, inst: Instance) -> tuple[str, ...]: ...

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool: ...

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]: ...


@dataclass
class SolveResult:
    """Solutions found (up to ``limit``), the recorded trace, nodes visited and whether the budget ran out."""

    solutions: list[Grid]
    trace: list[Event] = field(default_factory=list)
    nodes: int = 0
    exhausted_budget: bool = False

    @property
    def solution(self) -> Grid | None:
        return self.solutions[0] if self.solutions else None


class _Budget(Exception):
    pass


def start_grid(puzzle: PuzzleHooks, inst: Instance) -> Grid:
    """The answer grid with every fixed cell (givens, walls, trees, numbers) filled in and other cells empty."""
    n = inst.size
    g = [[EMPTY] * n for _ in range(n)]
    for r in range(n):
        for c in range(n):
            f = puzzle.fixed(r, c, inst)
            if f is not None:
                g[r][c] = f
    return g


def solve(puzzle: PuzzleHooks, inst: Instance, limit: int = 1, max_nodes: int = 200_000, record: bool = False,
          max_trace: int = 5_000, rng: random.Random | None = None) -> SolveResult:
    """Search for up to ``limit`` solutions of ``inst``; ``rng`` shuffles candidate order (for generation)."""
    n = inst.size
    g = start_grid(puzzle, inst)
    domains = [[puzzle.cell_domain(r, c, inst) for c in range(n)] for r in range(n)]
    res = SolveResult([])
    trace = res.trace

    def log(ev: Event) -> None:
        if record and len(trace) < max_trace:
            trace.append(ev)

    def candidates(r: int, c: int) -> list[str]:
        out = []
        for v in domains[r][c]:
            g[r][c] = v
            if puzzle.partial_ok(g, r, c, inst):
                out.append(v)
        g[r][c] = EMPTY
        return out

    def search() -> bool:
        res.nodes += 1
        if res.nodes > max_nodes:
            raise _Budget
        best: tuple[int, int, list[str]] | None = None
        for r in range(n):
            row = g[r]
            for c in range(n):
                if row[c] != EMPTY:
                    continue
                cands = candidates(r, c)
                if not cands:
                    log(("dead", r, c))
                    return False
                if best is None or len(cands) < len(best[2]):
                    best = (r, c, cands)
                    if len(cands) == 1:
                        break
            if best is not None and len(best[2]) == 1:
                break
        if best is None:
            bad = puzzle.rule_violations(g, inst)
            if bad:
                log(("reject", tuple(bad)))
                return False
            res.solutions.append([row[:] for row in g])
            log(("solved",))
            return len(res.solutions) >= limit
        r, c, cands = best
        if rng is not None and len(cands) > 1:
            rng.shuffle(cands)
        for v in cands:
            g[r][c] = v
            log(("place", r, c, v, tuple(cands)))
            if search():
                return True
            log(("undo", r, c, v))
        g[r][c] = EMPTY
        return False

    try:
        search()
    except _Budget:
        res.exhausted_budget = True
    return res


def count_solutions(puzzle: PuzzleHooks, inst: Instance, limit: int = 2, max_nodes: int = 200_000) -> int | None:
    """Number of solutions up to ``limit``; None when the node budget ran out first."""
    res = solve(puzzle, inst, limit=limit, max_nodes=max_nodes)
    return None if res.exhausted_budget and len(res.solutions) < limit else len(res.solutions)


def make_unique(puzzle: PuzzleHooks, inst: Instance, rng: random.Random, max_nodes: int = 20_000) -> Instance:
    """Add givens from the known solution until the solver proves the solution unique (optional VGRP variant).

    Only visible values are revealed (never ``e``, which an image cannot show). Each step runs a bounded search,
    so this is meant for boards up to about 8x8; when no visible cell is left the instance is returned as is."""
    n = inst.size
    hidden = [(r, c) for r in range(n) for c in range(n)
              if inst.board[r][c] == EMPTY and puzzle.fixed(r, c, inst) is None and inst.solution[r][c] != "e"]
    rng.shuffle(hidden)
    while True:
        if count_solutions(puzzle, inst, 2, max_nodes) == 1:
            return inst
        if not hidden:
            return inst
        r, c = hidden.pop()
        inst.board[r][c] = inst.solution[r][c]
        inst._derived.clear()
