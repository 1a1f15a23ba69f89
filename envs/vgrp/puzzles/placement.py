"""Placement puzzles of VGRP-Bench (Ren et al., arXiv 2503.23064): Star-Battle, Battle-Ships and Trees-and-Tents.

Objects (stars, ship segments, tents) never touch each other, not even diagonally. Solutions are random
non-touching placements; regions, fleets, trees and row/column counts are derived from them.
"""

from __future__ import annotations

import random

from envs.vgrp.core import (
    EMPTY, Grid, Instance, Puzzle, column, count_ok, grow_partition, neighbors4, neighbors8, region_cells, reveal,
)
from envs.vgrp.puzzles.filling import CountedFill
from envs.vgrp.puzzles.shading import reveal_shaded
from envs.vgrp.render import Canvas, region_text


def touching(g: Grid, on: str) -> bool:
    """Whether two ``on`` cells are diagonal neighbours or (for single-cell objects) orthogonal neighbours."""
    n = len(g)
    for r in range(n):
        for c in range(n):
            if g[r][c] != on:
                continue
            for x, y in ((r + 1, c - 1), (r + 1, c), (r + 1, c + 1), (r, c + 1)):
                if 0 <= x < n and 0 <= y < n and g[x][y] == on:
                    return True
    return False


class StarBattle(Puzzle):
    name = "star_battle"
    title = "Star-Battle"
    sizes = {"easy": 5, "medium": 8, "hard": 12}
    min_size = 4
    legend = "s = star, e = empty"
    rules = ("Place stars so that every row, every column and every outlined region contains exactly one star. "
             "Two stars never touch each other, not even diagonally.")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        perm: list[int] = []

        def rec() -> bool:
            if len(perm) == n:
                return True
            opts = [c for c in range(n) if c not in perm and (not perm or abs(c - perm[-1]) > 1)]
            rng.shuffle(opts)
            for c in opts:
                perm.append(c)
                if rec():
                    return True
                perm.pop()
            return False

        rec()
        stars = [(r, perm[r]) for r in range(n)]
        reg = grow_partition(n, stars, rng)
        assert reg is not None
        sol = [["e"] * n for _ in range(n)]
        for r, c in stars:
            sol[r][c] = "s"
        k = rng.randint(0, 1) if n_clues is None else n_clues
        return Instance(self.name, n, reveal_shaded(sol, k, rng), sol, {"regions": reg})

    def _cells(self, inst: Instance) -> dict[int, list[tuple[int, int]]]:
        return inst.derived("cells", lambda: region_cells(inst.clues["regions"]))

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        n = inst.size
        if g[r][c] == "s" and any(g[x][y] == "s" for x, y in neighbors8(n, r, c)):
            return False
        reg = [g[x][y] for x, y in self._cells(inst)[inst.clues["regions"][r][c]]]
        for line in (g[r], column(g, c), reg):
            if not count_ok(line.count("s"), line.count(EMPTY), 1):
                return False
        return True

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        n = inst.size
        out = []
        if any(row.count("s") != 1 for row in g):
            out.append("row_count")
        if any(column(g, c).count("s") != 1 for c in range(n)):
            out.append("col_count")
        if any(sum(g[r][c] == "s" for r, c in cells) != 1 for cells in self._cells(inst).values()):
            out.append("region_count")
        if touching(g, "s"):
            out.append("touching")
        return out

    def clue_text(self, inst: Instance) -> str:
        return region_text(inst.clues["regions"])

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        cv.regions(inst.clues["regions"], colors=True)

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        if v == "s":
            cv.label(cv.center(r, c), "\u2605", int(cv.cell * 0.7), (30, 30, 30))


def fleet_for(n: int) -> list[int]:
    """Ship lengths for an n x n Battle-Ships board (largest first)."""
    if n <= 4:
        return [2, 1, 1]
    if n <= 6:
        return [3, 2, 1, 1]
    if n <= 8:
        return [4, 3, 2, 2, 1, 1]
    if n <= 10:
        return [4, 3, 3, 2, 2, 1, 1, 1]
    return [5, 4, 3, 3, 2, 2, 1, 1, 1]


def ship_components(g: Grid) -> list[list[tuple[int, int]]]:
    """4-connected groups of ``s`` cells."""
    n = len(g)
    seen: set[tuple[int, int]] = set()
    comps = []
    for r in range(n):
        for c in range(n):
            if g[r][c] != "s" or (r, c) in seen:
                continue
            comp, stack = [], [(r, c)]
            seen.add((r, c))
            while stack:
                cell = stack.pop()
                comp.append(cell)
                for nb in neighbors4(n, *cell):
                    if g[nb[0]][nb[1]] == "s" and nb not in seen:
                        seen.add(nb)
                        stack.append(nb)
            comps.append(comp)
    return comps


class Battleships(CountedFill):
    name = "battleships"
    title = "Battle-Ships"
    margins = ("top", "left", "bottom")
    legend = "s = ship segment, e = water"
    rules = ("Place the whole fleet (listed ship lengths) in the grid. Each ship is a straight horizontal or "
             "vertical line of cells. Ships never touch each other, not even diagonally. The numbers on the left "
             "and top give how many ship cells each row and column contains.")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        fleet = fleet_for(n)
        while True:
            sol = [["e"] * n for _ in range(n)]
            blocked: set[tuple[int, int]] = set()
            ok = True
            for length in fleet:
                for _ in range(300):
                    horiz = rng.random() < 0.5
                    r = rng.randrange(n if horiz else n - length + 1)
                    c = rng.randrange(n - length + 1 if horiz else n)
                    cells = [(r, c + i) if horiz else (r + i, c) for i in range(length)]
                    if any(p in blocked for p in cells):
                        continue
                    for x, y in cells:
                        sol[x][y] = "s"
                        blocked.add((x, y))
                        blocked.update(neighbors8(n, x, y))
                    break
                else:
                    ok = False
                    break
            if ok:
                break
        clues = {"fleet": fleet, **self.counts_of(sol)}
        k = rng.randint(0, n // 2) if n_clues is None else n_clues
        return Instance(self.name, n, reveal_shaded(sol, k, rng), sol, clues)

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        if not self.counts_partial(g, r, c, inst):
            return False
        if g[r][c] != "s":
            return True
        n = inst.size
        for x, y in ((r - 1, c - 1), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c + 1)):
            if 0 <= x < n and 0 <= y < n and g[x][y] == "s":
                return False
        longest = max(inst.clues["fleet"])
        row = "".join("s" if x == "s" else "." for x in g[r])
        col = "".join("s" if x == "s" else "." for x in column(g, c))
        return "s" * (longest + 1) not in row and "s" * (longest + 1) not in col

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = []
        comps = ship_components(g)
        if any(len({r for r, _ in comp}) > 1 and len({c for _, c in comp}) > 1 for comp in comps):
            out.append("ship_shape")
        n = inst.size
        if any(g[r][c] == "s" and g[r + 1][c + d] == "s" for r in range(n - 1) for c in range(n) for d in (-1, 1)
               if 0 <= c + d < n):
            out.append("touching")
        if sorted(len(comp) for comp in comps) != sorted(inst.clues["fleet"]):
            out.append("fleet")
        return out + self.counts_violations(g, inst)

    def clue_text(self, inst: Instance) -> str:
        return f"Fleet (ship lengths): {inst.clues['fleet']}\n" + self.counts_text(inst)

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        self.draw_counts(cv, inst)
        fleet = "Fleet: " + " ".join(str(x) for x in inst.clues["fleet"])
        y = cv.top + inst.size * cv.cell + (cv.px - cv.top - inst.size * cv.cell) / 2
        cv.label((cv.px / 2, y), fleet, int(cv.top * 0.45), (20, 20, 120))

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        if v == "s":
            cv.disk(r, c, (40, 40, 60), 0.36)


class TreesAndTents(CountedFill):
    name = "trees_and_tents"
    title = "Trees-and-Tents"
    sizes = {"easy": 5, "medium": 8, "hard": 12}
    legend = "tt = tent, tr = tree, e = empty"
    rules = ("Place tents next to the trees. Every tree is paired with exactly one tent that is horizontally or "
             "vertically adjacent to it, and every tent with exactly one tree (as many tents as trees). Tents never "
             "touch each other, not even diagonally. The numbers on the left and top give how many tents each row "
             "and column contains. Keep the trees (tr) where they are.")

    def symbols(self, n: int) -> tuple[str, ...]:
        return ("tt", "e")

    def perception_empty(self) -> frozenset[str]:
        return super().perception_empty()

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        sol = [["e"] * n for _ in range(n)]
        blocked: set[tuple[int, int]] = set()
        cells = [(r, c) for r in range(n) for c in range(n)]
        rng.shuffle(cells)
        target = max(2, n * n // 5)
        tents = 0
        for r, c in cells:
            if tents >= target or (r, c) in blocked or sol[r][c] != "e":
                continue
            spots = [(x, y) for x, y in neighbors4(n, r, c) if sol[x][y] == "e"]
            if not spots:
                continue
            x, y = rng.choice(spots)
            sol[r][c], sol[x][y] = "tt", "tr"
            blocked.update(neighbors8(n, r, c))
            blocked.add((r, c))
            tents += 1
        counts = {"rows": [sol[r].count("tt") for r in range(n)], "cols": [column(sol, c).count("tt") for c in range(n)]}
        trees = [(r, c) for r in range(n) for c in range(n) if sol[r][c] == "tr"]
        tent_cells = [(r, c) for r in range(n) for c in range(n) if sol[r][c] == "tt"]
        k = rng.randint(0, max(0, tents // 4)) if n_clues is None else n_clues
        board = reveal(sol, 0, rng)
        for r, c in trees:
            board[r][c] = "tr"
        for r, c in rng.sample(tent_cells, min(k, len(tent_cells))):
            board[r][c] = "tt"
        return Instance(self.name, n, board, sol, counts)

    def counts_partial(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        row, col = g[r], column(g, c)
        return (count_ok(row.count("tt"), row.count(EMPTY), inst.clues["rows"][r])
                and count_ok(col.count("tt"), col.count(EMPTY), inst.clues["cols"][c]))

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        if not self.counts_partial(g, r, c, inst):
            return False
        n = inst.size
        if g[r][c] == "tt":
            if any(g[x][y] == "tt" for x, y in neighbors8(n, r, c)):
                return False
            return any(g[x][y] == "tr" for x, y in neighbors4(n, r, c))
        return True

    @staticmethod
    def matched(g: Grid) -> bool:
        """Whether tents and trees admit a perfect 1:1 matching over orthogonal adjacency."""
        n = len(g)
        tents = [(r, c) for r in range(n) for c in range(n) if g[r][c] == "tt"]
        trees = {(r, c) for r in range(n) for c in range(n) if g[r][c] == "tr"}
        if len(tents) != len(trees):
            return False
        owner: dict[tuple[int, int], tuple[int, int]] = {}

        def augment(t: tuple[int, int], seen: set) -> bool:
            for tr in neighbors4(n, *t):
                if tr in trees and tr not in seen:
                    seen.add(tr)
                    if tr not in owner or augment(owner[tr], seen):
                        owner[tr] = t
                        return True
            return False

        return all(augment(t, set()) for t in tents)

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        n = inst.size
        out = []
        if any(g[r].count("tt") != inst.clues["rows"][r] for r in range(n)):
            out.append("row_count")
        if any(column(g, c).count("tt") != inst.clues["cols"][c] for c in range(n)):
            out.append("col_count")
        if touching(g, "tt"):
            out.append("touching")
        if not self.matched(g):
            out.append("pairing")
        return out

    def clue_text(self, inst: Instance) -> str:
        return f"Row tent counts: {inst.clues['rows']}\nColumn tent counts: {inst.clues['cols']}"

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        self.draw_counts(cv, inst)

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        x, y = cv.center(r, c)
        d = cv.cell * 0.32
        if v == "tr":
            cv.draw.rectangle((x - d * 0.18, y + d * 0.2, x + d * 0.18, y + d), fill=(110, 70, 30))
            cv.draw.ellipse((x - d * 0.8, y - d, x + d * 0.8, y + d * 0.45), fill=(40, 150, 60))
        elif v == "tt":
            cv.draw.polygon([(x, y - d), (x - d, y + d * 0.8), (x + d, y + d * 0.8)], fill=(230, 120, 30),
                            outline=(90, 40, 10))


__all__ = ["StarBattle", "Battleships", "TreesAndTents", "touching", "ship_components", "fleet_for"]
