"""Sudoku family of VGRP-Bench (Ren et al., arXiv 2503.23064): Sudoku, Jigsaw-Sudoku, Colored-Sudoku,
Odd-Even-Sudoku and Killer-Sudoku.

Every member is a Latin square with extra "all different" groups (blocks, irregular regions, colour groups,
cages). Solutions come from a shuffled base sudoku pattern; irregular regions are made by swapping equal-digit
cells between neighbouring blocks, which keeps every region a permutation of 1..N.
"""

from __future__ import annotations

import random

from envs.vgrp.core import (
    EMPTY, Grid, Instance, block_shape, connected, int_grid_to_str, neighbors4, random_sudoku, region_cells,
    reveal,
)
from envs.vgrp.puzzles.latin import LatinBase, digits
from envs.vgrp.render import CLUE_RED, PASTELS, Canvas


def block_regions(n: int) -> list[list[int]]:
    br, bc = block_shape(n)
    return [[(r // br) * (n // bc) + c // bc for c in range(n)] for r in range(n)]


class SudokuBase(LatinBase):
    """Digits 1..N once per row, column and group; ``groups(inst)`` lists the extra all-different groups."""

    sizes = {"easy": 4, "medium": 9}
    group_rule = "block_unique"

    def check_size(self, size: int) -> None:
        block_shape(size)

    def region_map(self, inst: Instance) -> list[list[int]]:
        return inst.derived("blocks", lambda: block_regions(inst.size))

    def _groups(self, inst: Instance) -> tuple[dict[int, list[tuple[int, int]]], list[list[int]]]:
        def build():
            reg = self.region_map(inst)
            return region_cells(reg), reg

        return inst.derived("groups", build)

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        if not self.latin_partial(g, r, c):
            return False
        groups, reg = self._groups(inst)
        v = g[r][c]
        for r2, c2 in groups[reg[r][c]]:
            if g[r2][c2] == v and (r2, c2) != (r, c):
                return False
        return self.extra_partial(g, r, c, inst)

    def extra_partial(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        return True

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = self.latin_violations(g)
        full = set(digits(inst.size))
        if any({g[r][c] for r, c in cells} != full for cells in self._groups(inst)[0].values()):
            out.append(self.group_rule)
        return out + self.extra_violations(g, inst)

    def extra_violations(self, g: Grid, inst: Instance) -> list[str]:
        return []

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        sol = int_grid_to_str(random_sudoku(n, rng))
        clues = self.make_clues(sol, rng)
        k = self.default_clues(n, rng) if n_clues is None else n_clues
        return Instance(self.name, n, reveal(sol, k, rng), sol, clues)

    def default_clues(self, n: int, rng: random.Random) -> int:
        return rng.randint(n, n * n // 2)

    def make_clues(self, sol: Grid, rng: random.Random) -> dict:
        return {}

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        cv.regions(block_regions(inst.size), colors=False)


class Sudoku(SudokuBase):
    name = "sudoku"
    title = "Sudoku"
    rules = ("Fill the grid with digits 1..N so that every row, every column and every block (outlined by thick "
             "lines) contains each digit exactly once.")

    def clue_text(self, inst: Instance) -> str:
        br, bc = block_shape(inst.size)
        return f"Blocks: {br}x{bc} (rows x columns)"


class JigsawSudoku(SudokuBase):
    name = "jigsaw_sudoku"
    title = "Jigsaw-Sudoku"
    sizes = {"easy": 4, "medium": 8, "hard": 12}
    group_rule = "region_unique"
    rules = ("Fill the grid with digits 1..N so that every row, every column and every irregular region (outlined "
             "and coloured) contains each digit exactly once.")

    def region_map(self, inst: Instance) -> list[list[int]]:
        return inst.clues["regions"]

    def make_clues(self, sol: Grid, rng: random.Random) -> dict:
        n = len(sol)
        reg = block_regions(n)
        members = region_cells(reg)
        cells = {k: set(v) for k, v in members.items()}
        by_digit: dict[str, list[tuple[int, int]]] = {}
        for r in range(n):
            for c in range(n):
                by_digit.setdefault(sol[r][c], []).append((r, c))
        for _ in range(n * n * 3):
            r, c = rng.randrange(n), rng.randrange(n)
            a = reg[r][c]
            nbr = [reg[x][y] for x, y in neighbors4(n, r, c) if reg[x][y] != a]
            if not nbr:
                continue
            b = rng.choice(nbr)
            partners = [p for p in by_digit[sol[r][c]] if reg[p[0]][p[1]] == b]
            if not partners:
                continue
            pr, pc = partners[0]
            if not any(reg[x][y] == a and (x, y) != (r, c) for x, y in neighbors4(n, pr, pc)):
                continue  # the partner would be cut off from region a: skip the connectivity search
            new_a = (cells[a] - {(r, c)}) | {(pr, pc)}
            new_b = (cells[b] - {(pr, pc)}) | {(r, c)}
            if connected(new_a) and connected(new_b):
                cells[a], cells[b] = new_a, new_b
                reg[r][c], reg[pr][pc] = b, a
        return {"regions": reg}

    def clue_text(self, inst: Instance) -> str:
        from envs.vgrp.render import region_text

        return region_text(inst.clues["regions"])

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        cv.regions(inst.clues["regions"], colors=True)


class ColoredSudoku(SudokuBase):
    """VGRP's checker semantics: digits are unique within each colour group (as well as rows, columns, blocks)."""

    name = "colored_sudoku"
    title = "Colored-Sudoku"
    sizes = {"easy": 4, "medium": 8, "hard": 12}
    rules = ("Fill the grid with digits 1..N so that every row, every column and every block (outlined by thick "
             "lines) contains each digit exactly once. In addition, the cells of one colour never repeat a digit: "
             "each colour group contains each digit exactly once.")

    def make_clues(self, sol: Grid, rng: random.Random) -> dict:
        n = len(sol)
        colors = [[0] * n for _ in range(n)]
        for d in digits(n):
            perm = list(range(n))
            rng.shuffle(perm)
            cells = [(r, c) for r in range(n) for c in range(n) if sol[r][c] == d]
            for (r, c), k in zip(cells, perm):
                colors[r][c] = k
        return {"colors": colors}

    def _colors(self, inst: Instance) -> dict[int, list[tuple[int, int]]]:
        return inst.derived("colors", lambda: region_cells(inst.clues["colors"]))

    def extra_partial(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        k = inst.clues["colors"][r][c]
        v = g[r][c]
        return not any(g[x][y] == v and (x, y) != (r, c) for x, y in self._colors(inst)[k])

    def extra_violations(self, g: Grid, inst: Instance) -> list[str]:
        full = set(digits(inst.size))
        if any({g[r][c] for r, c in cells} != full for cells in self._colors(inst).values()):
            return ["color_unique"]
        return []

    def clue_text(self, inst: Instance) -> str:
        from envs.vgrp.render import region_text

        br, bc = block_shape(inst.size)
        return f"Blocks: {br}x{bc} (rows x columns)\n" + region_text(inst.clues["colors"], "Colours")

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        n = inst.size
        for r in range(n):
            for c in range(n):
                cv.fill(r, c, PASTELS[inst.clues["colors"][r][c] % len(PASTELS)], inset=0.04)
        cv.regions(block_regions(n), colors=False)


class OddEvenSudoku(SudokuBase):
    name = "odd_even_sudoku"
    title = "Odd-Even-Sudoku"
    rules = ("Fill the grid with digits 1..N so that every row, every column and every block (outlined by thick "
             "lines) contains each digit exactly once. White cells must hold even digits and black (dark) cells "
             "odd digits.")

    def make_clues(self, sol: Grid, rng: random.Random) -> dict:
        return {"parity": [["b" if int(x) % 2 else "w" for x in row] for row in sol]}

    def extra_partial(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        return (int(g[r][c]) % 2 == 1) == (inst.clues["parity"][r][c] == "b")

    def cell_domain(self, r: int, c: int, inst: Instance) -> tuple[str, ...]:
        f = self.fixed(r, c, inst)
        if f is not None:
            return (f,)
        odd = inst.clues["parity"][r][c] == "b"
        return tuple(d for d in digits(inst.size) if (int(d) % 2 == 1) == odd)

    def extra_violations(self, g: Grid, inst: Instance) -> list[str]:
        n = inst.size
        par = inst.clues["parity"]
        if any((int(g[r][c]) % 2 == 1) != (par[r][c] == "b") for r in range(n) for c in range(n)):
            return ["parity"]
        return []

    def clue_text(self, inst: Instance) -> str:
        br, bc = block_shape(inst.size)
        rows = "\n".join(" ".join(row) for row in inst.clues["parity"])
        return f"Blocks: {br}x{bc} (rows x columns)\nCell colours (w = white/even, b = black/odd):\n{rows}"

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        n = inst.size
        for r in range(n):
            for c in range(n):
                if inst.clues["parity"][r][c] == "b":
                    cv.fill(r, c, (70, 70, 70), inset=0.04)
                else:
                    cv.fill(r, c, (255, 255, 255), inset=0.04)
        cv.regions(block_regions(n), colors=False)

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        if v not in (EMPTY, ""):
            color = (255, 255, 255) if inst.clues["parity"][r][c] == "b" else (10, 10, 10)
            cv.cell_text(r, c, v, color)


class KillerSudoku(SudokuBase):
    name = "killer_sudoku"
    title = "Killer-Sudoku"
    rules = ("Fill the grid with digits 1..N so that every row, every column and every block (outlined by thick "
             "lines) contains each digit exactly once. Each cage (a group of cells with the same colour and a sum "
             "in its top-left corner) must add up to its sum, and digits never repeat within a cage.")

    def default_clues(self, n: int, rng: random.Random) -> int:
        return rng.randint(0, n)

    def make_clues(self, sol: Grid, rng: random.Random) -> dict:
        n = len(sol)
        cage = [[-1] * n for _ in range(n)]
        cages = []
        order = [(r, c) for r in range(n) for c in range(n)]
        rng.shuffle(order)
        for start in order:
            if cage[start[0]][start[1]] != -1:
                continue
            k = len(cages)
            target = rng.randint(1, 4)
            cells = [start]
            cage[start[0]][start[1]] = k
            used = {sol[start[0]][start[1]]}
            while len(cells) < target:
                opts = [(x, y) for r, c in cells for x, y in neighbors4(n, r, c)
                        if cage[x][y] == -1 and sol[x][y] not in used]
                if not opts:
                    break
                x, y = rng.choice(opts)
                cage[x][y] = k
                used.add(sol[x][y])
                cells.append((x, y))
            cells.sort()
            cages.append({"cells": [list(p) for p in cells], "sum": sum(int(sol[r][c]) for r, c in cells)})
        return {"cages": cages}

    def _cage_of(self, inst: Instance) -> dict[tuple[int, int], int]:
        return inst.derived("cage_of", lambda: {(r, c): i for i, cg in enumerate(inst.clues["cages"])
                                                for r, c in cg["cells"]})

    def extra_partial(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        cg = inst.clues["cages"][self._cage_of(inst)[(r, c)]]
        s = unknown = 0
        seen = set()
        for x, y in cg["cells"]:
            v = g[x][y]
            if v == EMPTY:
                unknown += 1
            else:
                if v in seen:
                    return False
                seen.add(v)
                s += int(v)
        if unknown == 0:
            return s == cg["sum"]
        return s + unknown <= cg["sum"] <= s + unknown * inst.size

    def extra_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = []
        v = [[int(x) for x in row] for row in g]
        cages = inst.derived("cage_tuples", lambda: [(tuple(map(tuple, cg["cells"])), cg["sum"])
                                                     for cg in inst.clues["cages"]])
        if any(sum([v[r][c] for r, c in cells]) != total for cells, total in cages):
            out.append("cage_sum")
        if any(len({v[r][c] for r, c in cells}) != len(cells) for cells, _ in cages):
            out.append("cage_unique")
        return out

    def clue_text(self, inst: Instance) -> str:
        br, bc = block_shape(inst.size)
        lines = [f"Blocks: {br}x{bc} (rows x columns)", "Cages (sum: cells):"]
        for cg in inst.clues["cages"]:
            lines.append(f"{cg['sum']}: " + " ".join(f"({r},{c})" for r, c in cg["cells"]))
        return "\n".join(lines)

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        n = inst.size
        cage_of = self._cage_of(inst)
        color: dict[int, int] = {}
        for i, cg in enumerate(inst.clues["cages"]):
            taken = {color.get(cage_of[(x, y)]) for r, c in cg["cells"] for x, y in neighbors4(n, r, c)}
            color[i] = next(k for k in range(len(PASTELS)) if k not in taken)
            for r, c in cg["cells"]:
                cv.fill(r, c, PASTELS[color[i]], inset=0.04)
        cage_map = [[cage_of[(r, c)] for c in range(n)] for r in range(n)]
        cv.regions(cage_map, colors=False, width_frac=0.025)
        cv.regions(block_regions(n), colors=False)
        size = int(cv.cell * 0.22)
        for cg in inst.clues["cages"]:
            r, c = cg["cells"][0]
            x0, y0, _, _ = cv.box(r, c, 0.08)
            cv.label((x0, y0), str(cg["sum"]), size, CLUE_RED, "la")


__all__ = ["Sudoku", "JigsawSudoku", "ColoredSudoku", "OddEvenSudoku", "KillerSudoku"]
