"""Shading puzzles of VGRP-Bench (Ren et al., arXiv 2503.23064): Kakurasu, Nonogram, Hitori and Binairo.

Answers mark each cell ``s`` (shaded) or ``e`` (empty); Binairo uses ``w``/``b``. Givens of s/e puzzles only ever
reveal ``s`` cells, so ``e`` on a perceived initial board unambiguously means "empty".
"""

from __future__ import annotations

import functools
import random

from envs.vgrp.core import (
    EMPTY, Grid, Instance, Puzzle, column, connected, count_ok, grid_connected, int_grid_to_str, neighbors4,
    random_latin, reveal, runs,
)
from envs.vgrp.render import CLUE_RED, Canvas


def reveal_shaded(sol: Grid, k: int, rng: random.Random) -> Grid:
    """Initial board that reveals ``k`` random ``s`` cells of the solution."""
    n = len(sol)
    return reveal(sol, k, rng, [(r, c) for r in range(n) for c in range(n) if sol[r][c] == "s"])


def random_shading(n: int, rng: random.Random, p: float) -> Grid:
    return [["s" if rng.random() < p else "e" for _ in range(n)] for _ in range(n)]


class Kakurasu(Puzzle):
    name = "kakurasu"
    title = "Kakurasu"
    margins = ("top", "left", "bottom", "right")
    legend = "s = shaded, e = empty"
    rules = ("Shade some cells. Columns are weighted 1..N from left to right and rows 1..N from top to bottom. "
             "For each row, the column weights of its shaded cells must add up to the clue on the right of the row; "
             "for each column, the row weights of its shaded cells must add up to the clue below the column. "
             "(Weights are printed on the top and left edges.)")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        sol = random_shading(n, rng, 0.45)
        clues = {
            "row_sums": [sum(c + 1 for c in range(n) if sol[r][c] == "s") for r in range(n)],
            "col_sums": [sum(r + 1 for r in range(n) if sol[r][c] == "s") for c in range(n)],
        }
        k = rng.randint(0, n // 2) if n_clues is None else n_clues
        return Instance(self.name, n, reveal_shaded(sol, k, rng), sol, clues)

    @staticmethod
    def _line_ok(line: list[str], want: int) -> bool:
        have = unknown = 0
        for i, x in enumerate(line):
            if x == "s":
                have += i + 1
            elif x == EMPTY:
                unknown += i + 1
        return count_ok(have, unknown, want)

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        return self._line_ok(g[r], inst.clues["row_sums"][r]) and self._line_ok(column(g, c), inst.clues["col_sums"][c])

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        n = inst.size
        out = []
        if any(sum(c + 1 for c in range(n) if g[r][c] == "s") != inst.clues["row_sums"][r] for r in range(n)):
            out.append("row_sum")
        if any(sum(r + 1 for r in range(n) if g[r][c] == "s") != inst.clues["col_sums"][c] for c in range(n)):
            out.append("col_sum")
        return out

    def clue_text(self, inst: Instance) -> str:
        return (f"Row sums (column weights 1..N): {inst.clues['row_sums']}\n"
                f"Column sums (row weights 1..N): {inst.clues['col_sums']}")

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        for i in range(inst.size):
            cv.col_clue(i, str(i + 1), "top", (110, 110, 110))
            cv.row_clue(i, str(i + 1), "left", (110, 110, 110))
            cv.row_clue(i, str(inst.clues["row_sums"][i]), "right")
            cv.col_clue(i, str(inst.clues["col_sums"][i]), "bottom")


@functools.lru_cache(maxsize=200_000)
def line_fits(line: tuple[str, ...], clue: tuple[int, ...]) -> bool:
    """Whether a partial nonogram line (``s``/``e``/``*``) can be completed to match the run clue."""
    n = len(line)

    @functools.lru_cache(maxsize=None)
    def f(i: int, j: int) -> bool:
        if i >= n:
            return j == len(clue)
        ok = False
        if line[i] != "s":
            ok = f(i + 1, j)
        if not ok and j < len(clue):
            k = clue[j]
            if i + k <= n and all(line[x] != "e" for x in range(i, i + k)):
                if i + k == n:
                    ok = j + 1 == len(clue)
                elif line[i + k] != "s":
                    ok = f(i + k + 1, j + 1)
        return ok

    return f(0, 0)


class Nonogram(Puzzle):
    name = "nonogram"
    title = "Nonogram"
    sizes = {"easy": 5, "medium": 8, "hard": 12}
    margins = ("top", "left")
    margin_frac = 0.2
    legend = "s = shaded, e = empty"
    rules = ("Shade cells so that each row and each column matches its clue: the clue lists, in order, the lengths "
             "of the runs of consecutive shaded cells in that line (left to right, top to bottom), with at least one "
             "empty cell between runs. A clue of 0 means the line has no shaded cell.")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        sol = random_shading(n, rng, 0.55)
        clues = {"rows": [runs(sol[r]) for r in range(n)], "cols": [runs(column(sol, c)) for c in range(n)]}
        k = rng.randint(0, n // 2) if n_clues is None else n_clues
        return Instance(self.name, n, reveal_shaded(sol, k, rng), sol, clues)

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        return (line_fits(tuple(g[r]), tuple(inst.clues["rows"][r]))
                and line_fits(tuple(column(g, c)), tuple(inst.clues["cols"][c])))

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        n = inst.size
        out = []
        if any(runs(g[r]) != list(inst.clues["rows"][r]) for r in range(n)):
            out.append("row_runs")
        if any(runs(column(g, c)) != list(inst.clues["cols"][c]) for c in range(n)):
            out.append("col_runs")
        return out

    def clue_text(self, inst: Instance) -> str:
        return f"Row clues: {inst.clues['rows']}\nColumn clues: {inst.clues['cols']}"

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        for i in range(inst.size):
            row = " ".join(str(x) for x in inst.clues["rows"][i]) or "0"
            size = int(min(cv.cell * 0.42, cv.left * 0.9 / max(1.0, 0.62 * len(row))))
            cv.label((cv.left - cv.cell * 0.1, cv.top + (i + 0.5) * cv.cell), row, size, CLUE_RED, "rm")
            col = inst.clues["cols"][i] or [0]
            size = int(min(cv.cell * 0.42, cv.top * 0.9 / max(1.0, 1.05 * len(col))))
            x = cv.left + (i + 0.5) * cv.cell
            for k, v in enumerate(reversed(col)):
                cv.label((x, cv.top - cv.cell * 0.08 - k * size * 1.05), str(v), size, CLUE_RED, "md")


class Hitori(Puzzle):
    name = "hitori"
    title = "Hitori"
    legend = "s = shaded, e = unshaded"
    rules = ("Shade some cells so that no number appears more than once among the unshaded cells of any row or "
             "column. Shaded cells may not be orthogonally adjacent, and all unshaded cells must form one "
             "orthogonally connected area. Answer with s (shaded) or e (unshaded) for every cell.")

    def fixed(self, r: int, c: int, inst: Instance) -> str | None:
        return None

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        lat = random_latin(n, rng)
        sol = [["e"] * n for _ in range(n)]
        unshaded = {(r, c) for r in range(n) for c in range(n)}
        cells = sorted(unshaded)
        rng.shuffle(cells)
        for r, c in cells[: int(n * n * 0.45)]:
            if any(sol[x][y] == "s" for x, y in neighbors4(n, r, c)):
                continue
            unshaded.discard((r, c))
            if connected(unshaded):
                sol[r][c] = "s"
            else:
                unshaded.add((r, c))
        nums = [row[:] for row in lat]
        for r in range(n):
            for c in range(n):
                if sol[r][c] == "s":
                    opts = [lat[r][y] for y in range(n) if sol[r][y] == "e"] + [lat[x][c] for x in range(n) if sol[x][c] == "e"]
                    nums[r][c] = rng.choice(opts)
        return Instance(self.name, n, int_grid_to_str(nums), sol, {})

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        n, b = inst.size, inst.board
        if g[r][c] == "s":
            if any(g[x][y] == "s" for x, y in neighbors4(n, r, c)):
                return False
            return grid_connected(g, off="s")
        v = b[r][c]
        return not any(g[r][y] == "e" and b[r][y] == v and y != c for y in range(n)) and not any(
            g[x][c] == "e" and b[x][c] == v and x != r for x in range(n))

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        b = inst.board
        out = []
        for name, g_lines, b_lines in (("row_unique", g, b), ("col_unique", list(zip(*g)), list(zip(*b)))):
            for gl, bl in zip(g_lines, b_lines):
                vals = [v for v, x in zip(bl, gl) if x == "e"]
                if len(vals) != len(set(vals)):
                    out.append(name)
                    break
        lines = ["".join(row) for row in g] + ["".join(col) for col in zip(*g)]
        if any("ss" in line for line in lines):
            out.append("shaded_adjacent")
        if not grid_connected(g, on="e"):
            out.append("connected")
        return out

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        if v == "s":
            cv.fill(r, c, (40, 40, 40), inset=0.04)
            cv.cell_text(r, c, inst.board[r][c], (230, 230, 230))
        elif v == "e" or v.isdigit():
            cv.cell_text(r, c, inst.board[r][c])


@functools.lru_cache(maxsize=16)
def binairo_rows(n: int) -> tuple[tuple[str, ...], ...]:
    """All balanced rows of length n with no three equal neighbours."""
    out = []

    def rec(prefix: list[str], w: int, b: int) -> None:
        if len(prefix) == n:
            out.append(tuple(prefix))
            return
        for v in ("w", "b"):
            if (w if v == "w" else b) == n // 2:
                continue
            if len(prefix) >= 2 and prefix[-1] == v and prefix[-2] == v:
                continue
            prefix.append(v)
            rec(prefix, w + (v == "w"), b + (v == "b"))
            prefix.pop()

    rec([], 0, 0)
    return tuple(out)


@functools.lru_cache(maxsize=16)
def binairo_masks(n: int) -> tuple[int, ...]:
    """Legal Binairo rows as bit masks (bit c set = white in column c)."""
    return tuple(sum(1 << c for c, v in enumerate(row) if v == "w") for row in binairo_rows(n))


class Binairo(Puzzle):
    name = "binairo"
    title = "Binairo"
    min_size = 4
    legend = "w = white, b = black"
    rules = ("Fill every cell with a white (w) or black (b) circle. No more than two circles of the same colour may "
             "be adjacent in a row or column, and every row and every column holds as many white as black circles.")

    def symbols(self, n: int) -> tuple[str, ...]:
        return ("w", "b")

    def perception_empty(self) -> frozenset[str]:
        return super().perception_empty()

    def check_size(self, size: int) -> None:
        if size % 2:
            raise ValueError(f"size={size} for binairo: expected an even size (rows and columns must balance)")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        rows = binairo_masks(n)
        full, half = (1 << n) - 1, n // 2
        chosen: list[int] = []

        def rec(wcnt: list[int]) -> bool:
            k = len(chosen)
            if k == n:
                return True
            wfull = sum(1 << c for c in range(n) if wcnt[c] == half)
            bfull = sum(1 << c for c in range(n) if k - wcnt[c] == half)
            p1 = chosen[-1] if k >= 1 else None
            p2 = chosen[-2] if k >= 2 else None
            cands = [m for m in rows if not (m & wfull) and not (~m & bfull & full)
                     and (p2 is None or (not (m & p1 & p2) and not (~m & ~p1 & ~p2 & full)))]
            for m in rng.sample(cands, min(6, len(cands))):
                chosen.append(m)
                if rec([w + ((m >> c) & 1) for c, w in enumerate(wcnt)]):
                    return True
                chosen.pop()
            return False

        while not rec([0] * n):
            chosen.clear()
        sol = [["w" if (m >> c) & 1 else "b" for c in range(n)] for m in chosen]
        k = rng.randint(n * n // 4, n * n // 2) if n_clues is None else n_clues
        return Instance(self.name, n, reveal(sol, k, rng), sol, {})

    @staticmethod
    def _line_ok(line: list[str], i: int, half: int) -> bool:
        v = line[i]
        if line.count(v) > half:
            return False
        for s in range(max(0, i - 2), min(i, len(line) - 3) + 1):
            if line[s] == line[s + 1] == line[s + 2] == v:
                return False
        return True

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        half = inst.size // 2
        return self._line_ok(g[r], c, half) and self._line_ok(column(g, c), r, half)

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        n = inst.size
        out = []
        rows = ["".join(row) for row in g]
        cols = ["".join(col) for col in zip(*g)]
        if any("www" in line or "bbb" in line for line in rows + cols):
            out.append("no_triple")
        if any(row.count("w") != n // 2 for row in rows):
            out.append("row_balance")
        if any(col.count("w") != n // 2 for col in cols):
            out.append("col_balance")
        return out

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        if v == "w":
            cv.disk(r, c, (255, 255, 255), 0.32, outline=(30, 30, 30))
        elif v == "b":
            cv.disk(r, c, (30, 30, 30), 0.32)


__all__ = ["Kakurasu", "Nonogram", "Hitori", "Binairo", "reveal_shaded", "line_fits", "binairo_rows"]
