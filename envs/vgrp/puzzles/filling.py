"""Filling puzzles of VGRP-Bench (Ren et al., arXiv 2503.23064): Aquarium and Thermometers.

Both fill cells (``s``) inside given containers (aquariums, thermometers) subject to row and column counts on
the sides. Row 0 is the top row: water settles at the bottom of an aquarium; thermometers fill from the bulb.
"""

from __future__ import annotations

import random

from envs.vgrp.core import EMPTY, Grid, Instance, Puzzle, column, count_ok, neighbors4, random_partition, region_cells
from envs.vgrp.puzzles.shading import reveal_shaded
from envs.vgrp.render import Canvas, region_text

WATER = (70, 130, 220)


class CountedFill(Puzzle):
    """Shared row/column count logic (``clues["rows"]``, ``clues["cols"]`` = number of ``s`` cells)."""

    margins = ("top", "left")
    legend = "s = filled, e = empty"

    def counts_partial(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        row, col = g[r], column(g, c)
        return (count_ok(row.count("s"), row.count(EMPTY), inst.clues["rows"][r])
                and count_ok(col.count("s"), col.count(EMPTY), inst.clues["cols"][c]))

    def counts_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = []
        if [row.count("s") for row in g] != list(inst.clues["rows"]):
            out.append("row_count")
        if [col.count("s") for col in zip(*g)] != list(inst.clues["cols"]):
            out.append("col_count")
        return out

    @staticmethod
    def counts_of(sol: Grid) -> dict:
        n = len(sol)
        return {"rows": [sol[r].count("s") for r in range(n)], "cols": [column(sol, c).count("s") for c in range(n)]}

    def counts_text(self, inst: Instance) -> str:
        return f"Row counts: {inst.clues['rows']}\nColumn counts: {inst.clues['cols']}"

    def draw_counts(self, cv: Canvas, inst: Instance) -> None:
        for i in range(inst.size):
            cv.row_clue(i, str(inst.clues["rows"][i]))
            cv.col_clue(i, str(inst.clues["cols"][i]))


class Aquarium(CountedFill):
    name = "aquarium"
    title = "Aquarium"
    legend = "s = water, e = empty"
    rules = ("The grid is divided into aquariums (outlined regions). Fill some aquariums with water: water in an "
             "aquarium settles to one level, so within an aquarium every cell at or below the water level (row 0 is "
             "the top) is water and every cell above it is empty; an aquarium may also stay empty or be full. The "
             "numbers on the left and top give how many water cells each row and column contains.")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        reg = random_partition(n, rng.randint(n, 2 * n - 2 if n > 2 else n), rng)
        sol = [["e"] * n for _ in range(n)]
        for cells in region_cells(reg).values():
            rows = sorted({r for r, _ in cells})
            level = rng.choice(rows + [n])  # rows >= level are water; n = empty aquarium
            for r, c in cells:
                if r >= level:
                    sol[r][c] = "s"
        clues = {"regions": reg, **self.counts_of(sol)}
        k = rng.randint(0, n // 2) if n_clues is None else n_clues
        return Instance(self.name, n, reveal_shaded(sol, k, rng), sol, clues)

    def _cells(self, inst: Instance) -> dict[int, list[tuple[int, int]]]:
        return inst.derived("cells", lambda: region_cells(inst.clues["regions"]))

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        if not self.counts_partial(g, r, c, inst):
            return False
        v = g[r][c]
        for x, y in self._cells(inst)[inst.clues["regions"][r][c]]:
            w = g[x][y]
            if w == EMPTY or w == v:
                continue
            water_row, dry_row = (r, x) if v == "s" else (x, r)
            if dry_row >= water_row:
                return False
        return True

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = []
        for cells in self._cells(inst).values():
            top_wet, low_dry = 1 << 30, -1
            for r, c in cells:
                if g[r][c] == "s":
                    top_wet = min(top_wet, r)
                else:
                    low_dry = max(low_dry, r)
            if low_dry >= top_wet:
                out.append("water_level")
                break
        return out + self.counts_violations(g, inst)

    def clue_text(self, inst: Instance) -> str:
        return region_text(inst.clues["regions"], "Aquariums") + "\n" + self.counts_text(inst)

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        cv.regions(inst.clues["regions"], colors=False, width_frac=0.07)
        self.draw_counts(cv, inst)

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        if v == "s":
            cv.fill(r, c, WATER, inset=0.08)


def _thermo_paths(n: int, rng: random.Random) -> list[list[tuple[int, int]]]:
    """Cover the grid with random thermometers (simple paths of length 1..max(2, n-1), mostly >= 2)."""
    free = {(r, c) for r in range(n) for c in range(n)}
    paths = []
    order = sorted(free)
    rng.shuffle(order)
    for start in order:
        if start not in free:
            continue
        target = rng.randint(2, max(2, min(n - 1, 6)))
        path = [start]
        free.discard(start)
        straight = rng.random() < 0.6
        direction = None
        while len(path) < target:
            r, c = path[-1]
            opts = [(x, y) for x, y in neighbors4(n, r, c) if (x, y) in free]
            if not opts:
                break
            if straight and direction is not None:
                ahead = (r + direction[0], c + direction[1])
                nxt = ahead if ahead in free else rng.choice(opts)
            else:
                nxt = rng.choice(opts)
            direction = (nxt[0] - r, nxt[1] - c)
            path.append(nxt)
            free.discard(nxt)
        paths.append(path)
    return paths


class Thermometers(CountedFill):
    name = "thermometers"
    title = "Thermometers"
    legend = "s = filled, e = empty"
    rules = ("Fill some thermometers with mercury. Each thermometer fills from its bulb (the round end) towards its "
             "other end without gaps: a filled cell means every cell between it and the bulb is filled too. A "
             "thermometer may be empty or full. The numbers on the left and top give how many filled cells each "
             "row and column contains.")

    def _generate(self, n: int, rng: random.Random, n_clues: int | None) -> Instance:
        paths = _thermo_paths(n, rng)
        sol = [["e"] * n for _ in range(n)]
        for path in paths:
            level = rng.randint(0, len(path))
            for r, c in path[:level]:
                sol[r][c] = "s"
        clues = {"thermometers": [[list(p) for p in path] for path in paths], **self.counts_of(sol)}
        k = rng.randint(0, n // 2) if n_clues is None else n_clues
        return Instance(self.name, n, reveal_shaded(sol, k, rng), sol, clues)

    def _where(self, inst: Instance) -> dict[tuple[int, int], tuple[int, int]]:
        return inst.derived("where", lambda: {(r, c): (i, k) for i, path in enumerate(inst.clues["thermometers"])
                                              for k, (r, c) in enumerate(path)})

    def partial_ok(self, g: Grid, r: int, c: int, inst: Instance) -> bool:
        if not self.counts_partial(g, r, c, inst):
            return False
        i, k = self._where(inst)[(r, c)]
        path = inst.clues["thermometers"][i]
        if g[r][c] == "s":
            return all(g[x][y] != "e" for x, y in path[:k])
        return all(g[x][y] != "s" for x, y in path[k + 1:])

    def rule_violations(self, g: Grid, inst: Instance) -> list[str]:
        out = []
        for path in inst.clues["thermometers"]:
            line = "".join([g[r][c] for r, c in path])
            if "es" in line:
                out.append("thermo_fill")
                break
        return out + self.counts_violations(g, inst)

    def clue_text(self, inst: Instance) -> str:
        lines = ["Thermometers (bulb first):"]
        for path in inst.clues["thermometers"]:
            lines.append(" -> ".join(f"({r},{c})" for r, c in path))
        return "\n".join(lines) + "\n" + self.counts_text(inst)

    def decorate(self, cv: Canvas, inst: Instance) -> None:
        outline, tube = (90, 90, 90), (250, 250, 250)
        w_out, w_in = int(cv.cell * 0.42), int(cv.cell * 0.30)
        for path in inst.clues["thermometers"]:
            pts = [cv.center(r, c) for r, c in path]
            if len(pts) > 1:
                cv.draw.line(pts, fill=outline, width=w_out, joint="curve")
            r0, c0 = path[0]
            cv.disk(r0, c0, outline, 0.34)
            if len(pts) > 1:
                cv.draw.line(pts, fill=tube, width=w_in, joint="curve")
            cv.disk(r0, c0, tube, 0.27)
        self.draw_counts(cv, inst)

    def draw_cell(self, cv: Canvas, r: int, c: int, v: str, inst: Instance) -> None:
        if v != "s":
            return
        i, k = self._where(inst)[(r, c)]
        path = inst.clues["thermometers"][i]
        if k == 0:
            cv.disk(r, c, WATER, 0.25)
        x, y = cv.center(r, c)
        w = int(cv.cell * 0.22)
        if k > 0:
            px, py = cv.center(*path[k - 1])
            cv.draw.line([(px, py), (x, y)], fill=WATER, width=w)
        cv.disk(r, c, WATER, 0.11)


__all__ = ["Aquarium", "Thermometers", "CountedFill"]
