"""Latin-square family of VGRP-Bench (Ren et al., arXiv 2503.23064): Futoshiki, Renzoku, Skyscraper, and the
grid variant of Kakuro (numbers 1..N with row/column sums, adjacent numbers differ).

Solutions are random Latin squares built row by row from random perfect matchings; the side information
(inequalities, consecutive dots, visibility counts, sums) is derived from the solution.
"""

from __future__ import annotations

import functools
import random

from envs.vgrp.core import EMPTY, Grid, Instance, Puzzle, column, int_grid_to_str, random_latin, reveal
from envs.vgrp.render import Canvas, LINE


@functools.lru_cache(maxsize=32)
def digits(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(1, n + 1))


@functools.lru_cache(maxsize=32)
def _pairs(n: int) -> tuple[tuple[int, int, int, int], ...]:
    return tuple(adjacent_pairs(n))


def adjacent_pairs(n: int) -> list[tuple[int, int, int, int]]:
    pairs = [(r, c, r, c + 1) for r in range(n) for c in range(n - 1)]
    pairs += [(r, c, r + 1, c) for r in range(n - 1) for c in range(n)]
    return pairs


class LatinBase(Puzzle):
    """Digits 1..N, each exactly once per row and per column."""

    legend = "digits 1..N"

    def symbols(self, n: int) -> tuple[str, ...]:
        return digits(n)

    def default_clues(self, n: int, rng: random.Random) -> int:
        return rng.randint(n // 2, n)

    def latin_partial(self, g: Grid, r: int, c: int) -> bool:
        v = g[r][c]
        row = g[r]
        for j, x in enumerate(row):
            if x == v and j != c:
                return False
        for i in range(len(g)):
            if g[i][c] == v and i != r:
                return False
        return True

    def latin_violations(self, g: Grid) -> list[str]:
        full = frozenset(digits(len(g)))
        out = []
        if any(full.symmetric_difference(row) for row in g):
            out.append("row_unique")
        if any(full.symmetric_difference(col) for col in zip(*g)):
            out.append("col_unique")
        return out


def _pair_map(pairs: list[list[int]]) -> dict[tuple[int, int], list[tuple[int, int, bool]]]:
    """cell -> [(other_r, other_c, this_is_smaller)] for a list of ``[r1, c1, r2, c2]`` (first is smaller)."""
    m: dict[tuple[int, int], list[tuple[int, int, bool]]] = {}
    for r1, c1, r2, c2 in pairs:
        m.setdefault((r1, c1), []).append((r2, c2, True))
        m.setdefault((r2, c2), []).append((r1, c1, False))
    return m


def _border_point(cv: Canvas, r1: int, c1: int, r2: int, c2: int) -> tuple[float, float]:
    x1, y1 = cv.center(r1, c1)
    x2, y2 = cv.center(r2, c2)
    return ((x1 + x2) / 2, (y1 + y2) / 2)


class Futoshiki(LatinBase):
    name = "futoshiki"
    title = "Futoshiki"
    opaque_text = False  # inequality signs reach into the cells
    rules = ("Fill the grid with digits 1..N so that every row and every column contains each digit exactly once. "
             "Every inequality sign between two neighbouring cells must hold (< and > between horizontal "
             "neighbours; ^ means the upper cell is smaller, v means the lower cell is smaller).")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        sol = int_grid_to_str(random_latin(n, rng))
        pairs = adjacent_pairs(n)
        k = min(len(pairs), rng.randint(n, 2 * n))
        ineq = []
        for r1, c1, r2, c2 in sorted(rng.sample(pairs, k)):
            if int(sol[r1][c1]) < int(sol[r2][c2]):
                ineq.append([r1, c1, r2, c2])
            else:
                ineq.append([r2, c2, r1, c1])
        k_giv = self.default_clues(n, rng) if n_clues is None else n_clues
        return Instance(self.name, n, reveal(sol, k_giv, rng), sol, {"inequalities": ineq})

    def _map(self, inst: Instance) -> dict:
        return inst.derived("ineq", lambda: _pair_map(inst.clues["inequalities"]))

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        if not self.latin_partial(g, r, c):
            return False
        v = int(g[r][c])
        n = inst.size
        for r2, c2, smaller in self._map(inst).get((r, c), ()):
            w = g[r2][c2]
            if w == EMPTY:
                if (smaller and v == n) or (not smaller and v == 1):
                    return False
            elif (v < int(w)) != smaller:
                return False
        return True

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = self.latin_violations(g)
        if any(int(g[r1][c1]) >= int(g[r2][c2]) for r1, c1, r2, c2 in inst.clues["inequalities"]):
            out.append("inequality")
        return out

    def clue_text(self, inst: Instance) -> str:
        items = [f"({a},{b})<({c},{d})" for a, b, c, d in inst.clues["inequalities"]]
        return "Inequalities (smaller < larger): " + (", ".join(items) if items else "none")

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        for r1, c1, r2, c2 in inst.clues["inequalities"]:
            chevron(cv, r1, c1, r2, c2)


def chevron(cv: Canvas, r1: int, c1: int, r2: int, c2: int) -> None:
    """Draw the inequality sign between two neighbours, its tip pointing at the smaller cell (r1, c1)."""
    x, y = _border_point(cv, r1, c1, r2, c2)
    d = cv.cell * 0.12
    dx, dy = (c1 - c2) * d, (r1 - r2) * d  # towards the smaller cell
    px, py = -dy, dx  # perpendicular
    tip = (x + dx, y + dy)
    w = max(2, int(cv.cell * 0.05))
    cv.draw.line([(x - dx + px, y - dy + py), tip, (x - dx - px, y - dy - py)], fill=(200, 30, 30), width=w,
                 joint="curve")


class Renzoku(LatinBase):
    name = "renzoku"
    title = "Renzoku"
    opaque_text = False  # dots on shared edges reach into the cells
    rules = ("Fill the grid with digits 1..N so that every row and every column contains each digit exactly once. "
             "A dot between two neighbouring cells means their digits are consecutive (differ by 1); where there is "
             "no dot, the two neighbouring digits are not consecutive.")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        sol = int_grid_to_str(random_latin(n, rng))
        dots = [[r1, c1, r2, c2] for r1, c1, r2, c2 in adjacent_pairs(n)
                if abs(int(sol[r1][c1]) - int(sol[r2][c2])) == 1]
        k_giv = self.default_clues(n, rng) if n_clues is None else n_clues
        return Instance(self.name, n, reveal(sol, k_giv, rng), sol, {"dots": dots})

    def _dots(self, inst: Instance) -> set[tuple[int, int, int, int]]:
        return inst.derived("dots", lambda: {tuple(d) for d in inst.clues["dots"]})

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        if not self.latin_partial(g, r, c):
            return False
        v = int(g[r][c])
        dots = self._dots(inst)
        n = inst.size
        for r2, c2 in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if not (0 <= r2 < n and 0 <= c2 < n) or g[r2][c2] == EMPTY:
                continue
            key = (r, c, r2, c2) if (r, c) < (r2, c2) else (r2, c2, r, c)
            if (abs(v - int(g[r2][c2])) == 1) != (key in dots):
                return False
        return True

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = self.latin_violations(g)
        dots = self._dots(inst)
        v = [[int(x) for x in row] for row in g]
        bad_dot = bad_gap = False
        for pair in _pairs(inst.size):
            r1, c1, r2, c2 = pair
            consecutive = abs(v[r1][c1] - v[r2][c2]) == 1
            if pair in dots and not consecutive:
                bad_dot = True
            elif pair not in dots and consecutive:
                bad_gap = True
        if bad_dot:
            out.append("dot")
        if bad_gap:
            out.append("no_dot")
        return out

    def clue_text(self, inst: Instance) -> str:
        items = [f"({a},{b})-({c},{d})" for a, b, c, d in inst.clues["dots"]]
        return "Dots (consecutive neighbours): " + (", ".join(items) if items else "none")

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        rad = cv.cell * 0.09
        for r1, c1, r2, c2 in inst.clues["dots"]:
            x, y = _border_point(cv, r1, c1, r2, c2)
            cv.draw.ellipse((x - rad, y - rad, x + rad, y + rad), fill=LINE)


def visible(line) -> int:
    """Number of skyscrapers seen from the start of ``line`` (strings or ints)."""
    best = k = 0
    for x in line:
        v = int(x)
        if v > best:
            best, k = v, k + 1
    return k


class Skyscraper(LatinBase):
    name = "skyscraper"
    title = "Skyscraper"
    margins = ("top", "bottom", "left", "right")
    rules = ("Fill the grid with building heights 1..N so that every row and every column contains each height "
             "exactly once. A number outside the grid gives how many buildings are visible from that side, looking "
             "along its row or column; a taller building hides every shorter one behind it.")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        sol = int_grid_to_str(random_latin(n, rng))
        clues = {
            "top": [visible(column(sol, c)) for c in range(n)],
            "bottom": [visible(column(sol, c)[::-1]) for c in range(n)],
            "left": [visible(sol[r]) for r in range(n)],
            "right": [visible(sol[r][::-1]) for r in range(n)],
        }
        k_giv = rng.randint(0, n // 2) if n_clues is None else n_clues
        return Instance(self.name, n, reveal(sol, k_giv, rng), sol, clues)

    @staticmethod
    def _line_ok(line: list[str], want: int, n: int) -> bool:
        best = k = 0
        for x in line:
            if x == EMPTY:
                return k <= want
            v = int(x)
            if v > best:
                best, k = v, k + 1
                if v == n:
                    return k == want
        return k == want

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        if not self.latin_partial(g, r, c):
            return False
        n, cl = inst.size, inst.clues
        row, col = g[r], column(g, c)
        return (self._line_ok(row, cl["left"][r], n) and self._line_ok(row[::-1], cl["right"][r], n)
                and self._line_ok(col, cl["top"][c], n) and self._line_ok(col[::-1], cl["bottom"][c], n))

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = self.latin_violations(g)
        n, cl = inst.size, inst.clues
        rows = [[int(x) for x in row] for row in g]
        cols = [list(col) for col in zip(*rows)]
        if any(visible(rows[r]) != cl["left"][r] or visible(rows[r][::-1]) != cl["right"][r] for r in range(n)) or any(
            visible(cols[c]) != cl["top"][c] or visible(cols[c][::-1]) != cl["bottom"][c] for c in range(n)
        ):
            out.append("visibility")
        return out

    def clue_text(self, inst: Instance) -> str:
        cl = inst.clues
        return "\n".join(f"{side.capitalize()} clues: {cl[side]}" for side in ("top", "bottom", "left", "right"))

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        for i in range(inst.size):
            cv.col_clue(i, str(inst.clues["top"][i]), "top")
            cv.col_clue(i, str(inst.clues["bottom"][i]), "bottom")
            cv.row_clue(i, str(inst.clues["left"][i]), "left")
            cv.row_clue(i, str(inst.clues["right"][i]), "right")


class Kakuro(Puzzle):
    """VGRP's grid variant of Kakuro: every cell holds 1..N, sums per row and column, neighbours differ."""

    name = "kakuro"
    title = "Kakuro"
    margins = ("top", "left")
    legend = "digits 1..N"
    rules = ("Fill every cell with a number from 1 to N. The numbers in each row must add up to the sum on the "
             "left of the row, and the numbers in each column to the sum above the column. Two orthogonally "
             "adjacent cells never hold the same number.")

    def symbols(self, n: int) -> tuple[str, ...]:
        return digits(n)

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        vals = [[0] * n for _ in range(n)]
        for r in range(n):
            for c in range(n):
                banned = {vals[r - 1][c] if r else 0, vals[r][c - 1] if c else 0}
                vals[r][c] = rng.choice([v for v in range(1, n + 1) if v not in banned])
        sol = int_grid_to_str(vals)
        clues = {"row_sums": [sum(row) for row in vals], "col_sums": [sum(vals[r][c] for r in range(n)) for c in range(n)]}
        k_giv = rng.randint(n, 2 * n) if n_clues is None else n_clues
        return Instance(self.name, n, reveal(sol, k_giv, rng), sol, clues)

    @staticmethod
    def _sum_ok(line: list[str], want: int, n: int) -> bool:
        s = unknown = 0
        for x in line:
            if x == EMPTY:
                unknown += 1
            else:
                s += int(x)
        return s + unknown <= want <= s + unknown * n

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        n, v = inst.size, g[r][c]
        for r2, c2 in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= r2 < n and 0 <= c2 < n and g[r2][c2] == v:
                return False
        return (self._sum_ok(g[r], inst.clues["row_sums"][r], n)
                and self._sum_ok(column(g, c), inst.clues["col_sums"][c], n))

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        n = inst.size
        out = []
        if any(sum(int(x) for x in g[r]) != inst.clues["row_sums"][r] for r in range(n)):
            out.append("row_sum")
        if any(sum(int(g[r][c]) for r in range(n)) != inst.clues["col_sums"][c] for c in range(n)):
            out.append("col_sum")
        if any(g[r][c] == g[r][c + 1] for r in range(n) for c in range(n - 1)) or any(
            g[r][c] == g[r + 1][c] for r in range(n - 1) for c in range(n)
        ):
            out.append("adjacent_differ")
        return out

    def clue_text(self, inst: Instance) -> str:
        return f"Row sums: {inst.clues['row_sums']}\nColumn sums: {inst.clues['col_sums']}"

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        for i in range(inst.size):
            cv.row_clue(i, str(inst.clues["row_sums"][i]))
            cv.col_clue(i, str(inst.clues["col_sums"][i]))
