"""Number-deduction puzzles of VGRP-Bench (Ren et al., arXiv 2503.23064): Light-Up and Field-Explore.

Field-Explore is VGRP's minesweeper. VGRP's released checker accepted any Field-Explore answer that kept the
givens; ours checks every revealed number against the mines around it and the announced total mine count.
"""

from __future__ import annotations

import random

from envs.vgrp.core import EMPTY, Grid, Instance, Puzzle, count_ok, neighbors4, neighbors8
from envs.vgrp.render import Canvas

WALL_DIGITS = ("0", "1", "2", "3", "4")
MINE_DIGITS = tuple(str(i) for i in range(9))


def _is_wall(x: str) -> bool:
    return x == "w" or x in WALL_DIGITS


def sight(board: Grid, r: int, c: int) -> list[tuple[int, int]]:
    """White cells a bulb at (r, c) lights (itself excluded): straight lines until a wall."""
    n = len(board)
    out = []
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        x, y = r + dr, c + dc
        while 0 <= x < n and 0 <= y < n and not _is_wall(board[x][y]):
            out.append((x, y))
            x, y = x + dr, y + dc
    return out


class LightUp(Puzzle):
    name = "light_up"
    title = "Light-Up"
    legend = "s = bulb, e = empty; walls keep their board symbol (w or their number)"
    rules = ("Place light bulbs in white cells. A bulb lights its own cell and every white cell in its row and "
             "column until a wall (black cell) blocks the light. Every white cell must be lit, no bulb may light "
             "another bulb, and a numbered wall must have exactly that many bulbs orthogonally adjacent to it. "
             "Walls (w, or their number) stay unchanged in the answer.")

    def perception_empty(self) -> frozenset[str]:
        return super().perception_empty() - {"0"}

    def fixed(self, r: int, c: int, inst: Instance) -> str | None:
        b = inst.board[r][c]
        return b if _is_wall(b) else None

    def normalize_answer_cell(self, cell: str, r: int, c: int, inst: Instance) -> str:
        b = inst.board[r][c]
        if _is_wall(b) and _is_wall(cell):
            return b
        return cell

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        board = [["w" if rng.random() < 0.2 else EMPTY for _ in range(n)] for _ in range(n)]
        sol = [["w" if x == "w" else "e" for x in row] for row in board]
        lit: set[tuple[int, int]] = set()
        white = [(r, c) for r in range(n) for c in range(n) if board[r][c] == EMPTY]
        rng.shuffle(white)
        for cell in white:
            if cell in lit:
                continue
            opts = [p for p in [cell] + sight(board, *cell) if p not in lit]
            r, c = rng.choice(opts)
            sol[r][c] = "s"
            lit.add((r, c))
            lit.update(sight(board, r, c))
        walls = [(r, c) for r in range(n) for c in range(n) if board[r][c] == "w"]
        for r, c in walls:
            if rng.random() < 0.65:
                k = sum(sol[x][y] == "s" for x, y in neighbors4(n, r, c))
                board[r][c] = sol[r][c] = str(k)
        return Instance(self.name, n, board, sol, {})

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        n, b = inst.size, inst.board
        if g[r][c] == "s" and any(g[x][y] == "s" for x, y in self._sight(inst)[r][c]):
            return False
        for x, y in neighbors4(n, r, c):
            if b[x][y] in WALL_DIGITS:
                around = [g[p][q] for p, q in neighbors4(n, x, y)]
                if not count_ok(around.count("s"), around.count(EMPTY), int(b[x][y])):
                    return False
        return True

    def _sight(self, inst: Instance) -> list[list[list[tuple[int, int]]]]:
        n, b = inst.size, inst.board
        return inst.derived("sight", lambda: [[sight(b, r, c) for c in range(n)] for r in range(n)])

    def _segments(self, inst: Instance) -> tuple[list[list[int]], list[list[int]], int]:
        """Ids of the maximal wall-free row runs and column runs through every white cell (-1 on walls)."""

        def build():
            n, b = inst.size, inst.board
            rs = [[-1] * n for _ in range(n)]
            cs = [[-1] * n for _ in range(n)]
            k = 0
            for r in range(n):
                k += 1
                for c in range(n):
                    if _is_wall(b[r][c]):
                        k += 1
                    else:
                        rs[r][c] = k
            for c in range(n):
                k += 1
                for r in range(n):
                    if _is_wall(b[r][c]):
                        k += 1
                    else:
                        cs[r][c] = k
            return rs, cs, k + 1

        return inst.derived("segments", build)

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        rs, cs, k = self._segments(inst)
        bulbs = [0] * k
        for r, row in enumerate(g):
            for c, x in enumerate(row):
                if x == "s":
                    bulbs[rs[r][c]] += 1
                    bulbs[cs[r][c]] += 1
        out = []
        if any(not bulbs[a] and not bulbs[d] for a, d in self._white_pairs(inst)):
            out.append("lit")
        if max(bulbs) > 1:
            out.append("bulb_conflict")
        if any(sum(g[x][y] == "s" for x, y in around) != k for around, k in self._numbered(inst)):
            out.append("wall_number")
        return out

    def _white_pairs(self, inst: Instance) -> list[tuple[int, int]]:
        """(row segment, column segment) of every white cell."""
        rs, cs, _ = self._segments(inst)
        n = inst.size
        return inst.derived("white_pairs", lambda: [(rs[r][c], cs[r][c]) for r in range(n) for c in range(n)
                                                    if rs[r][c] >= 0])

    def _numbered(self, inst: Instance) -> list[tuple[list[tuple[int, int]], int]]:
        n, b = inst.size, inst.board
        return inst.derived("numbered", lambda: [(neighbors4(n, r, c), int(b[r][c])) for r in range(n)
                                                 for c in range(n) if b[r][c] in WALL_DIGITS])

    def clue_text(self, inst: Instance) -> str:
        return "Walls: w = plain wall, 0-4 = wall with that many adjacent bulbs."

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        b = inst.board[r][c]
        if _is_wall(b):
            cv.fill(r, c, (25, 25, 25), inset=0.04)
            if b != "w":
                cv.cell_text(r, c, b, (255, 255, 255))
        elif v == "s":
            cv.disk(r, c, (255, 215, 40), 0.3, outline=(120, 90, 0))


class FieldExplore(Puzzle):
    name = "field_explore"
    title = "Field-Explore"
    margins = ("top",)
    legend = "s = mine, e = safe (revealed number cells may keep their number)"
    rules = ("Find the mines. A revealed number tells how many of its (up to 8) neighbouring cells hold a mine; "
             "cells with a number never hold a mine. The total number of mines is given. Mark every cell as s "
             "(mine) or e (no mine).")

    def perception_empty(self) -> frozenset[str]:
        return super().perception_empty() - {"0"}

    def fixed(self, r: int, c: int, inst: Instance) -> str | None:
        return "e" if inst.board[r][c] in MINE_DIGITS else None

    def normalize_answer_cell(self, cell: str, r: int, c: int, inst: Instance) -> str:
        if inst.board[r][c] in MINE_DIGITS and cell == inst.board[r][c]:
            return "e"
        return cell

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        cells = [(r, c) for r in range(n) for c in range(n)]
        mines = set(rng.sample(cells, max(1, round(n * n * rng.uniform(0.15, 0.25)))))
        sol = [["s" if (r, c) in mines else "e" for c in range(n)] for r in range(n)]
        safe = [p for p in cells if p not in mines]
        k = round(len(safe) * rng.uniform(0.5, 0.8)) if n_clues is None else min(n_clues, len(safe))
        board = [[EMPTY] * n for _ in range(n)]
        for r, c in rng.sample(safe, k):
            board[r][c] = str(sum((x, y) in mines for x, y in neighbors8(n, r, c)))
        return Instance(self.name, n, board, sol, {"mines": len(mines)})

    def _numbers(self, inst: Instance) -> list[tuple[int, int, int]]:
        b = inst.board
        return inst.derived("numbers", lambda: [(r, c, int(b[r][c])) for r in range(inst.size)
                                                for c in range(inst.size) if b[r][c] in MINE_DIGITS])

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        n, b = inst.size, inst.board
        for x, y in neighbors8(n, r, c):
            if b[x][y] in MINE_DIGITS:
                around = [g[p][q] for p, q in neighbors8(n, x, y)]
                if not count_ok(around.count("s"), around.count(EMPTY), int(b[x][y])):
                    return False
        have = sum(row.count("s") for row in g)
        unknown = sum(row.count(EMPTY) for row in g)
        return count_ok(have, unknown, inst.clues["mines"])

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        n = inst.size
        out = []
        if any(sum(g[x][y] == "s" for x, y in neighbors8(n, r, c)) != k for r, c, k in self._numbers(inst)):
            out.append("numbers")
        if sum(row.count("s") for row in g) != inst.clues["mines"]:
            out.append("mine_count")
        return out

    def clue_text(self, inst: Instance) -> str:
        return f"Total mines: {inst.clues['mines']}"

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        cv.label((cv.px / 2, cv.top / 2), f"Mines: {inst.clues['mines']}", int(cv.top * 0.6), (150, 20, 20))

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        b = inst.board[r][c]
        if b in MINE_DIGITS:
            cv.fill(r, c, (250, 250, 250), inset=0.04)
            cv.cell_text(r, c, b, (20, 60, 160))
        elif v == "s":
            cv.disk(r, c, (20, 20, 20), 0.28)


__all__ = ["LightUp", "FieldExplore", "sight"]
