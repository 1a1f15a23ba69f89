"""Core types for the VGRP-Bench puzzles (Ren et al., "VGRP-Bench: Visual Grid Reasoning Puzzle Benchmark for
Large Vision-Language Models", arXiv 2503.23064).

A puzzle instance is a pure function of ``(puzzle, size, n_clues, seed)``. Boards are square lists of string
cells using VGRP's answer symbols (digits ``"1".."N"``, ``"s"``/``"e"``, ``"w"``/``"b"``, ``"tt"``/``"tr"``/``"e"``);
``"*"`` marks an empty cell of the initial board. Side information (row counts, regions, cages, ...) lives in
``Instance.clues`` as JSON-able values, so an instance round-trips through ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import abc
import functools
import random
from typing import Any, Sequence

from envs.verdict import Verdict
from envs.vgrp.instance import EMPTY, Grid, Instance
from envs.vgrp.solver import make_unique

LEVELS = ("easy", "medium", "hard")


class Puzzle(abc.ABC):
    """Base class of one VGRP puzzle: generation, rule checking, solver hooks and drawing hooks.

    Subclasses set the class attributes and implement ``_generate`` and ``rule_violations``; ``partial_ok`` makes
    the generic backtracking solver (``envs.vgrp.solver``) efficient and must never reject a partial grid that can
    still be completed to a valid solution.
    """

    name: str = ""
    title: str = ""
    sizes: dict[str, int] = {"easy": 4, "medium": 8, "hard": 12}
    min_size: int = 3
    max_size: int = 12
    rules: str = ""
    legend: str = ""
    # side-clue margins used by the image renderer: any of "top", "left", "bottom", "right"
    margins: tuple[str, ...] = ()
    margin_frac: float | None = None  # side-clue margin as a fraction of the image side (None: renderer default)
    opaque_text: bool = True  # cell text may be pasted as opaque tiles (False when marks sit close to cell text)

    # ----- symbols -------------------------------------------------------------------------------------------
    def symbols(self, n: int) -> tuple[str, ...]:
        """Values the solver may write into an empty cell."""
        return ("s", "e")

    def normalize_answer_cell(self, cell: str, r: int, c: int, inst: Instance) -> str:
        """Map harmless spelling variants of an answer cell to the canonical symbol."""
        return cell

    def fixed(self, r: int, c: int, inst: Instance) -> str | None:
        """The answer symbol cell (r, c) must hold because of the initial board (a given, wall, tree), or None."""
        g = inst.board[r][c]
        return None if g == EMPTY else g

    def cell_domain(self, r: int, c: int, inst: Instance) -> tuple[str, ...]:
        """Allowed answer values of cell (r, c); fixed cells have exactly one value."""
        f = self.fixed(r, c, inst)
        return (f,) if f is not None else self.symbols(inst.size)

    def perception_empty(self) -> frozenset[str]:
        """Spellings that mean "empty" when reading a perceived initial board (VGRP treats 0, * and e alike)."""
        return frozenset({"*", "", ".", "_", "-", "0", "e", "none", "null", "empty"})

    # ----- generation ----------------------------------------------------------------------------------------
    def size_for(self, size: int | None, difficulty: str | None) -> int:
        if size is None:
            level = difficulty or "easy"
            if level not in self.sizes:
                raise ValueError(f"difficulty={level!r} for {self.name}: expected one of {sorted(self.sizes)}")
            return self.sizes[level]
        if not isinstance(size, int) or not self.min_size <= size <= self.max_size:
            raise ValueError(f"size={size!r} for {self.name}: expected an int in [{self.min_size}, {self.max_size}]")
        self.check_size(size)
        return size

    def check_size(self, size: int) -> None:
        """Raise ValueError for sizes the puzzle does not support (e.g. sudoku needs a block shape)."""

    def generate(self, size: int | None = None, seed: int = 0, n_clues: int | None = None,
                 difficulty: str | None = None, unique: bool = False) -> Instance:
        """Generate a reproducible instance; ``difficulty`` picks the VGRP size level when ``size`` is None.

        ``unique=True`` adds givens from the solution until the solver proves it unique (VGRP itself does not
        require uniqueness: its checker accepts any valid answer, and so does ``verify``)."""
        n = self.size_for(size, difficulty)
        if n_clues is not None and (not isinstance(n_clues, int) or n_clues < 0 or n_clues > n * n):
            raise ValueError(f"n_clues={n_clues!r}: expected an int in [0, {n * n}]")
        rng = random.Random(f"vgrp/{self.name}/{n}/{seed}")
        inst = self._generate(n, rng, n_clues)
        inst.seed = seed
        inst.difficulty = difficulty or next((k for k, v in self.sizes.items() if v == n), None)
        if unique:
            make_unique(self, inst, rng)
        return inst

    @abc.abstractmethod
    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        """A fresh instance of side ``n`` (solution + givens), drawn from ``rng``."""

    def default_clues(self, n: int, rng: random.Random) -> int:
        """Number of solution cells revealed as givens when ``n_clues`` is not set."""
        return rng.randint(0, max(0, n * n // 8))

    # ----- checking ------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        """Rule ids violated by a complete, well-formed answer grid ``g`` (givens already checked)."""

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        """Cheap local consistency of the partial grid after writing cell (r, c); ``"*"`` cells are unknown."""
        return True

    # ----- rendering hooks -----------------------------------------------------------------------------------
    def clue_text(self, inst: Instance) -> str:
        """Side clues as text lines (appended after the board in text observations and prompts)."""
        return ""

    def decorate(self, canvas: Any, inst: Instance) -> None:
        """Draw puzzle-specific marks (regions, cages, thermometers, side clues) onto ``canvas``."""


def verify(puzzle: Puzzle, answer: Any, inst: Instance) -> Verdict:
    """Strict VGRP check: right shape, every cell filled with a legal symbol, givens preserved, all rules hold."""
    n = inst.size
    if not isinstance(answer, (list, tuple)) or len(answer) != n or any(
        not isinstance(row, (list, tuple)) or len(row) != n for row in answer
    ):
        return _rejected(["shape"])
    allowed = frozenset(puzzle.symbols(n))
    fixed: dict[tuple[int, int], str] = inst.derived("fixed_cells", lambda: {
        (r, c): f for r in range(n) for c in range(n) if (f := puzzle.fixed(r, c, inst)) is not None})
    # cells already spelled canonically skip normalisation; puzzles with their own spelling rules (a wall's
    # number, a revealed mine count) only fast-path the free symbols
    fast = inst.derived("fast_symbols", lambda: allowed | frozenset(fixed.values()) if (
        type(puzzle).normalize_answer_cell is Puzzle.normalize_answer_cell) else allowed)
    g: Grid = []
    for r, arow in enumerate(answer):
        row = [x if x.__class__ is str and x in fast else _normalize(puzzle, x, r, c, inst) for c, x in enumerate(arow)]
        g.append(row)
    complete = not any(EMPTY in row or "" in row for row in g)
    givens = all(g[r][c] == f for (r, c), f in fixed.items() if g[r][c] not in (EMPTY, ""))
    legal = True
    for r, row in enumerate(g):
        if allowed.issuperset(row):
            continue
        for c, x in enumerate(row):
            if x not in allowed and x not in (EMPTY, "") and (r, c) not in fixed:
                legal = False
    bad = [name for name, ok in (("complete", complete), ("symbols", legal), ("givens", givens)) if not ok]
    if bad:
        return _rejected(bad)
    v = puzzle.rule_violations(g, inst)
    return _rejected(v) if v else Verdict(outcome="ok", success=True, reward=1.0)


def _rejected(violations: list[str]) -> Verdict:
    """A failed check: the outcome is the first failed check (``shape``, ``complete``, ``symbols``, ``givens`` or a
    rule id); every broken rule is in ``violations``."""
    return Verdict(outcome=violations[0], success=False, reward=0.0, violations=list(violations))


def _normalize(puzzle: Puzzle, cell: Any, r: int, c: int, inst: Instance) -> str:
    cell = "" if cell is None else str(cell).strip().lower()
    return puzzle.normalize_answer_cell(cell, r, c, inst)


# ---------------------------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------------------------
def blank(n: int, fill: str = EMPTY) -> Grid:
    return [[fill] * n for _ in range(n)]


def reveal(solution: Grid, k: int, rng: random.Random, cells: Sequence[tuple[int, int]] | None = None,
           hidden: str = EMPTY) -> Grid:
    """Initial board showing ``k`` random solution cells (VGRP ``sample_hints``), others ``hidden``."""
    n = len(solution)
    pool = list(cells) if cells is not None else [(r, c) for r in range(n) for c in range(n)]
    k = max(0, min(k, len(pool)))
    board = blank(n, hidden)
    for r, c in rng.sample(pool, k):
        board[r][c] = solution[r][c]
    return board


@functools.lru_cache(maxsize=32)
def _nb_tables(n: int) -> tuple[list[list[list[tuple[int, int]]]], list[list[list[tuple[int, int]]]], list[list[int]]]:
    """Per-size neighbour tables: 4-neighbours, 8-neighbours (as (r, c)) and 4-neighbours by flat index."""
    nb4 = [[[(x, y) for x, y in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)) if 0 <= x < n and 0 <= y < n]
            for c in range(n)] for r in range(n)]
    nb8 = [[[(r + dr, c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
             if (dr or dc) and 0 <= r + dr < n and 0 <= c + dc < n] for c in range(n)] for r in range(n)]
    flat = [[x * n + y for x, y in nb4[i // n][i % n]] for i in range(n * n)]
    return nb4, nb8, flat


def neighbors4(n: int, r: int, c: int) -> list[tuple[int, int]]:
    """Orthogonal neighbours inside the board (a shared cached list: do not modify)."""
    return _nb_tables(n)[0][r][c]


def neighbors8(n: int, r: int, c: int) -> list[tuple[int, int]]:
    """King-move neighbours inside the board (a shared cached list: do not modify)."""
    return _nb_tables(n)[1][r][c]


def grid_connected(g: Grid, on: str | None = None, off: str | None = None) -> bool:
    """Whether the cells equal to ``on`` (or, with ``off``, different from ``off``) are 4-connected."""
    n = len(g)
    flat = [(x == on) if off is None else (x != off) for row in g for x in row]
    total = sum(flat)
    if total == 0:
        return True
    nbrs = _nb_tables(n)[2]
    start = flat.index(True)
    flat[start] = False
    stack = [start]
    seen = 1
    while stack:
        i = stack.pop()
        for j in nbrs[i]:
            if flat[j]:
                flat[j] = False
                seen += 1
                stack.append(j)
    return seen == total


def connected(cells: set[tuple[int, int]]) -> bool:
    """Whether a set of cells is 4-connected (the empty set counts as connected)."""
    if not cells:
        return True
    start = next(iter(cells))
    seen = {start}
    stack = [start]
    while stack:
        r, c = stack.pop()
        for nb in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if nb in cells and nb not in seen:
                seen.add(nb)
                stack.append(nb)
    return len(seen) == len(cells)


def runs(line: Sequence[str], on: str = "s") -> list[int]:
    """Run lengths of ``on`` cells in a line (nonogram clue)."""
    out, k = [], 0
    for x in line:
        if x == on:
            k += 1
        elif k:
            out.append(k)
            k = 0
    if k:
        out.append(k)
    return out


def column(g: Grid, c: int) -> list[str]:
    return [row[c] for row in g]


def random_latin(n: int, rng: random.Random) -> list[list[int]]:
    """A random Latin square over 1..n built row by row from random perfect matchings (always extendable)."""
    rows: list[list[int]] = []
    col_used = [set() for _ in range(n)]
    for _ in range(n):
        match_sym: dict[int, int] = {}  # symbol -> column

        def augment(col: int, seen: set[int], order: list[int]) -> bool:
            for s in order:
                if s in col_used[col] or s in seen:
                    continue
                seen.add(s)
                if s not in match_sym or augment(match_sym[s], seen, order):
                    match_sym[s] = col
                    return True
            return False

        cols = list(range(n))
        rng.shuffle(cols)
        for col in cols:
            order = list(range(1, n + 1))
            rng.shuffle(order)
            if not augment(col, set(), order):
                raise RuntimeError("latin square extension failed (Hall's theorem violated?)")
        row = [0] * n
        for s, col in match_sym.items():
            row[col] = s
            col_used[col].add(s)
        rows.append(row)
    return rows


def block_shape(n: int) -> tuple[int, int]:
    """Sudoku block (rows, cols) for side n: 4->2x2, 6->2x3, 8->2x4, 9->3x3, 12->3x4."""
    best = None
    for br in range(1, n + 1):
        if n % br == 0 and br <= n // br:
            best = (br, n // br)
    if best is None or best[0] == 1:
        raise ValueError(f"size={n}: a sudoku needs a composite side with a block shape (e.g. 4, 6, 8, 9, 12)")
    return best


def random_sudoku(n: int, rng: random.Random) -> list[list[int]]:
    """A random full sudoku: base pattern, then shuffle digits, rows within bands, bands, cols within stacks, stacks."""
    br, bc = block_shape(n)

    def pattern(r: int, c: int) -> int:
        return (bc * (r % br) + r // br + c) % n

    def shuffled(k: int) -> list[int]:
        xs = list(range(k))
        rng.shuffle(xs)
        return xs

    rows = [g * br + r for g in shuffled(n // br) for r in shuffled(br)]
    cols = [g * bc + c for g in shuffled(n // bc) for c in shuffled(bc)]
    digits = shuffled(n)
    return [[digits[pattern(r, c)] + 1 for c in cols] for r in rows]


def grow_partition(n: int, seeds: list[tuple[int, int]], rng: random.Random,
                   max_size: int | None = None) -> list[list[int]] | None:
    """Partition the n x n grid into connected regions grown from ``seeds`` (region id = seed index).

    Returns None when growth gets stuck because of ``max_size`` (callers retry with a new rng state)."""
    reg = [[-1] * n for _ in range(n)]
    sizes = [1] * len(seeds)
    frontier: list[tuple[int, int, int]] = []
    for i, (r, c) in enumerate(seeds):
        reg[r][c] = i
    for i, (r, c) in enumerate(seeds):
        for nr, nc in neighbors4(n, r, c):
            frontier.append((i, nr, nc))
    left = n * n - len(seeds)
    while left:
        if not frontier:
            return None
        j = rng.randrange(len(frontier))
        frontier[j], frontier[-1] = frontier[-1], frontier[j]
        i, r, c = frontier.pop()
        if reg[r][c] != -1 or (max_size is not None and sizes[i] >= max_size):
            continue
        reg[r][c] = i
        sizes[i] += 1
        left -= 1
        for nr, nc in neighbors4(n, r, c):
            if reg[nr][nc] == -1:
                frontier.append((i, nr, nc))
    return reg


def random_partition(n: int, k: int, rng: random.Random) -> list[list[int]]:
    """Partition into ``k`` connected regions grown from random distinct seeds."""
    cells = [(r, c) for r in range(n) for c in range(n)]
    reg = grow_partition(n, rng.sample(cells, k), rng)
    assert reg is not None
    return reg


def region_cells(reg: list[list[int]]) -> dict[int, list[tuple[int, int]]]:
    out: dict[int, list[tuple[int, int]]] = {}
    for r, row in enumerate(reg):
        for c, x in enumerate(row):
            out.setdefault(x, []).append((r, c))
    return out


def int_grid_to_str(g: list[list[int]]) -> Grid:
    return [[str(x) for x in row] for row in g]


def count_ok(have: int, unknown: int, want: int) -> bool:
    """Partial count constraint: ``have`` placed, ``unknown`` undecided cells, exact target ``want``."""
    return have <= want <= have + unknown

