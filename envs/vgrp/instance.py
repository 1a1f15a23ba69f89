"""Data types of a VGRP-Bench puzzle instance (Ren et al., arXiv 2503.23064): the board, its clues and a solution.

Shared by the puzzle rules (:mod:`envs.vgrp.core`) and the solver (:mod:`envs.vgrp.solver`), which therefore do
not import each other both ways. Boards are square lists of string cells; ``"*"`` (:data:`EMPTY`) marks an empty
cell of the initial board.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

EMPTY = "*"
Grid = list[list[str]]


@dataclass
class Instance:
    """One puzzle: the initial board the model must perceive, side clues, and one known solution.

    Treat an instance as immutable once checked: structures derived from the clues are cached in ``_derived``
    (clear it after editing ``board`` or ``clues`` in place)."""

    puzzle: str
    size: int
    board: Grid
    solution: Grid
    clues: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    difficulty: str | None = None
    _derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def derived(self, key: str, build: Callable[[], Any]) -> Any:
        """Cached structure computed from the clues (e.g. a cell -> cage map); not serialised."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def to_dict(self) -> dict[str, Any]:
        return {
            "puzzle": self.puzzle,
            "size": self.size,
            "board": [list(r) for r in self.board],
            "solution": [list(r) for r in self.solution],
            "clues": self.clues,
            "seed": self.seed,
            "difficulty": self.difficulty,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Instance":
        for key in ("puzzle", "size", "board", "solution"):
            if key not in d:
                raise KeyError(f"instance dict is missing key {key!r}; expected keys puzzle, size, board, solution, clues")
        n = int(d["size"])
        for key in ("board", "solution"):
            grid = d[key]
            if not isinstance(grid, list) or len(grid) != n or any(not isinstance(r, list) or len(r) != n for r in grid):
                raise ValueError(f"instance {key!r} must be a {n}x{n} list of rows (size={n}); got {str(grid)[:80]}")
        return cls(
            puzzle=str(d["puzzle"]),
            size=n,
            board=[[str(c) for c in r] for r in d["board"]],
            solution=[[str(c) for c in r] for r in d["solution"]],
            clues=dict(d.get("clues") or {}),
            seed=d.get("seed"),
            difficulty=d.get("difficulty"),
        )
