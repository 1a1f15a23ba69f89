"""Rule-by-rule adversarial tests for the VGRP-Bench verifiers (Ren et al., arXiv 2503.23064).

For every puzzle, boards (or clue sets) are built that break exactly one rule while keeping the others, and the
verifier must name that rule. This guards against the released VGRP checker's holes (Field-Explore answers that
only kept the givens were accepted).
"""

from __future__ import annotations

import copy

import pytest

from envs.vgrp import get_puzzle, verify
from envs.vgrp.core import Instance, column, runs


def G(*rows: str) -> list[list[str]]:
    return [r.split() for r in rows]


def make(name: str, board: list[list[str]] | None, n: int, clues: dict) -> Instance:
    board = board or [["*"] * n for _ in range(n)]
    return Instance(name, n, board, [row[:] for row in board], clues)


def counts(g, on="s"):
    return {"rows": [row.count(on) for row in g], "cols": [column(g, c).count(on) for c in range(len(g))]}


def viol(name, g, inst):
    return verify(get_puzzle(name), g, inst).violations


def mutated(name, seed, fn):
    """Generated instance whose clues are changed by ``fn``; returns (instance, its original solution)."""
    inst = get_puzzle(name).generate(seed=seed, difficulty="easy", n_clues=0)
    inst2 = copy.deepcopy(inst)
    inst2._derived = {}
    fn(inst2)
    return inst2, inst.solution


# ----- aquarium --------------------------------------------------------------------------------------------------
AQ_REG = [[0, 0, 1], [0, 0, 1], [2, 2, 1]]


@pytest.mark.parametrize("g,expected", [
    (G("e e e", "s s s", "s s s"), []),
    (G("s s e", "e e e", "e e e"), ["water_level"]),  # water floating above dry cells
    (G("e e e", "s e e", "e e e"), ["water_level"]),  # level not horizontal inside one aquarium
])
def test_aquarium(g, expected):
    inst = make("aquarium", None, 3, {"regions": AQ_REG, **counts(g)})
    assert viol("aquarium", g, inst) == expected
    bad = make("aquarium", None, 3, {"regions": AQ_REG, **counts(g)})
    bad.clues["cols"][0] += 1
    assert "col_count" in viol("aquarium", g, bad)


# ----- battleships -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("g,expected", [
    (G("s s e e", "e e e s", "e e e e", "s e e e"), []),
    (G("s s e e", "e e s e", "e e e e", "s e e e"), ["touching"]),
    (G("s s e e", "s e e e", "e e e e", "e e e e"), ["ship_shape", "touching", "fleet"]),
    (G("s e s e", "e e e e", "s e s e", "e e e e"), ["fleet"]),
])
def test_battleships(g, expected):
    inst = make("battleships", None, 4, {"fleet": [2, 1, 1], **counts(g)})
    assert viol("battleships", g, inst) == expected


def test_battleships_counts():
    g = G("s s e e", "e e e s", "e e e e", "s e e e")
    inst = make("battleships", None, 4, {"fleet": [2, 1, 1], **counts(g)})
    inst.clues["rows"] = [1, 1, 1, 1]
    assert viol("battleships", g, inst) == ["row_count"]


# ----- binairo ---------------------------------------------------------------------------------------------------
def test_binairo():
    ok = G("w w b b", "b b w w", "w b w b", "b w b w")
    assert viol("binairo", ok, make("binairo", None, 4, {})) == []
    triples = G("w w w b b b", "b b b w w w", "w w w b b b", "b b b w w w", "w w w b b b", "b b b w w w")
    assert viol("binairo", triples, make("binairo", None, 6, {})) == ["no_triple"]
    unbalanced = G("w w b w", "b b w b", "w b w b", "b w b w")
    assert viol("binairo", unbalanced, make("binairo", None, 4, {})) == ["row_balance"]
    transposed = [list(col) for col in zip(*unbalanced)]
    assert viol("binairo", transposed, make("binairo", None, 4, {})) == ["col_balance"]


# ----- sudoku family ---------------------------------------------------------------------------------------------
SUDOKU = G("1 2 3 4", "3 4 1 2", "2 1 4 3", "4 3 2 1")


def test_sudoku():
    inst = make("sudoku", None, 4, {})
    assert viol("sudoku", SUDOKU, inst) == []
    swapped_cols = [[row[0], row[2], row[1], row[3]] for row in SUDOKU]
    assert viol("sudoku", swapped_cols, inst) == ["block_unique"]
    swapped_cells = [row[:] for row in SUDOKU]
    swapped_cells[0][0], swapped_cells[0][1] = "2", "1"
    assert viol("sudoku", swapped_cells, inst) == ["col_unique"]
    rows_swapped = [SUDOKU[0], SUDOKU[2], SUDOKU[1], SUDOKU[3]]
    assert viol("sudoku", rows_swapped, inst) == ["block_unique"]


def test_jigsaw_regions():
    def swap(inst):
        reg = inst.clues["regions"]
        sol = inst.solution
        cells = [(r, c) for r in range(4) for c in range(4)]
        a = cells[0]
        b = next(x for x in cells if reg[x[0]][x[1]] != reg[a[0]][a[1]] and sol[x[0]][x[1]] != sol[a[0]][a[1]])
        reg[a[0]][a[1]], reg[b[0]][b[1]] = reg[b[0]][b[1]], reg[a[0]][a[1]]

    inst, sol = mutated("jigsaw_sudoku", 1, swap)
    assert viol("jigsaw_sudoku", sol, inst) == ["region_unique"]


def test_colored_sudoku_colours():
    def swap(inst):
        col = inst.clues["colors"]
        sol = inst.solution
        cells = [(r, c) for r in range(4) for c in range(4)]
        a = cells[0]
        b = next(x for x in cells if col[x[0]][x[1]] != col[a[0]][a[1]] and sol[x[0]][x[1]] != sol[a[0]][a[1]])
        col[a[0]][a[1]], col[b[0]][b[1]] = col[b[0]][b[1]], col[a[0]][a[1]]

    inst, sol = mutated("colored_sudoku", 1, swap)
    assert viol("colored_sudoku", sol, inst) == ["color_unique"]


def test_odd_even_parity():
    def flip(inst):
        inst.clues["parity"][0][0] = "w" if inst.clues["parity"][0][0] == "b" else "b"

    inst, sol = mutated("odd_even_sudoku", 1, flip)
    assert viol("odd_even_sudoku", sol, inst) == ["parity"]


def test_killer_cages():
    def bump(inst):
        inst.clues["cages"][0]["sum"] += 1

    inst, sol = mutated("killer_sudoku", 1, bump)
    assert viol("killer_sudoku", sol, inst) == ["cage_sum"]
    # a cage holding two equal digits with the right sum breaks only cage_unique
    inst = make("killer_sudoku", None, 4, {"cages": [{"cells": [[0, 0], [1, 2]], "sum": 2}]
                                           + [{"cells": [[r, c]], "sum": int(SUDOKU[r][c])} for r in range(4)
                                              for c in range(4) if (r, c) not in ((0, 0), (1, 2))]})
    assert viol("killer_sudoku", SUDOKU, inst) == ["cage_unique"]


# ----- latin family ----------------------------------------------------------------------------------------------
def test_futoshiki_inequality():
    def flip(inst):
        r1, c1, r2, c2 = inst.clues["inequalities"][0]
        inst.clues["inequalities"][0] = [r2, c2, r1, c1]

    inst, sol = mutated("futoshiki", 2, flip)
    assert viol("futoshiki", sol, inst) == ["inequality"]


def test_renzoku_dots():
    inst, sol = mutated("renzoku", 2, lambda i: i.clues["dots"].pop(0))
    assert viol("renzoku", sol, inst) == ["no_dot"]

    def add(i):
        s = i.solution
        for r in range(4):
            for c in range(3):
                if abs(int(s[r][c]) - int(s[r][c + 1])) != 1:
                    i.clues["dots"].append([r, c, r, c + 1])
                    return

    inst, sol = mutated("renzoku", 2, add)
    assert viol("renzoku", sol, inst) == ["dot"]


def test_skyscraper_visibility():
    inst, sol = mutated("skyscraper", 2, lambda i: i.clues["left"].__setitem__(0, i.clues["left"][0] % 4 + 1))
    assert viol("skyscraper", sol, inst) == ["visibility"]
    latin_but_wrong = [sol[1], sol[0], sol[2], sol[3]]
    fresh = get_puzzle("skyscraper").generate(seed=2, difficulty="easy", n_clues=0)
    assert "visibility" in viol("skyscraper", latin_but_wrong, fresh) or latin_but_wrong == sol


def test_kakuro():
    g = G("1 2 1", "2 1 2", "1 2 1")
    clues = {"row_sums": [4, 5, 4], "col_sums": [4, 5, 4]}
    assert viol("kakuro", g, make("kakuro", None, 3, clues)) == []
    same = G("1 1 2", "2 2 1", "1 2 1")
    clues2 = {"row_sums": [4, 5, 4], "col_sums": [4, 5, 4]}
    assert viol("kakuro", same, make("kakuro", None, 3, clues2)) == ["adjacent_differ"]
    assert viol("kakuro", g, make("kakuro", None, 3, {"row_sums": [5, 5, 4], "col_sums": [4, 5, 4]})) == ["row_sum"]
    assert viol("kakuro", g, make("kakuro", None, 3, {"row_sums": [4, 5, 4], "col_sums": [4, 6, 4]})) == ["col_sum"]


# ----- shading family --------------------------------------------------------------------------------------------
def test_kakurasu():
    g = G("s e e", "e s s", "e e e")
    clues = {"row_sums": [1, 5, 0], "col_sums": [1, 2, 2]}
    assert viol("kakurasu", g, make("kakurasu", None, 3, clues)) == []
    same_count_wrong_weight = G("e s e", "e s s", "e e e")
    assert viol("kakurasu", same_count_wrong_weight, make("kakurasu", None, 3, clues)) == ["row_sum", "col_sum"]


def test_nonogram():
    g = G("s s e", "e e s", "s e s")
    clues = {"rows": [runs(r) for r in g], "cols": [runs(column(g, c)) for c in range(3)]}
    assert viol("nonogram", g, make("nonogram", None, 3, clues)) == []
    split_run = G("s e s", "e e s", "s e s")  # same counts in row 0, different runs
    clues_c = {"rows": clues["rows"], "cols": [runs(column(split_run, c)) for c in range(3)]}
    assert viol("nonogram", split_run, make("nonogram", None, 3, clues_c)) == ["row_runs"]
    clues_r = {"rows": [runs(r) for r in split_run], "cols": clues["cols"]}
    assert viol("nonogram", split_run, make("nonogram", None, 3, clues_r)) == ["col_runs"]


def test_hitori():
    nums = G("1 1 2", "2 3 1", "3 2 2")
    inst = make("hitori", nums, 3, {})
    assert viol("hitori", G("e s e", "e e e", "e e s"), inst) == []
    assert viol("hitori", G("e e e", "e e e", "e e e"), inst) == ["row_unique", "col_unique"]
    latin = make("hitori", G("1 2 3", "2 3 1", "3 1 2"), 3, {})
    assert viol("hitori", G("e s e", "s e e", "e e e"), latin) == ["connected"]
    assert viol("hitori", G("s s e", "e e e", "e e e"), latin) == ["shaded_adjacent"]


# ----- placement family ------------------------------------------------------------------------------------------
STAR_REG = [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


def test_star_battle():
    inst = make("star_battle", None, 4, {"regions": STAR_REG})
    assert viol("star_battle", G("e s e e", "e e e s", "s e e e", "e e s e"), inst) == []
    v = viol("star_battle", G("e s e e", "s e e e", "e e e s", "e e s e"), inst)
    assert "touching" in v and "row_count" not in v and "col_count" not in v
    assert viol("star_battle", G("e s e e", "e e e s", "s e e e", "e e e e"), inst) == ["row_count", "col_count",
                                                                                         "region_count"]
    other = make("star_battle", None, 4, {"regions": [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 2, 3]]})
    assert viol("star_battle", G("e s e e", "e e e s", "s e e e", "e e s e"), other) == ["region_count"]


def test_trees_and_tents():
    board = G("* tr * *", "* * * *", "* * * *", "* * * tr")
    pair_bad = G("tt tr tt e", "e e e e", "e e e e", "e e e tr")
    inst = make("trees_and_tents", board, 4, counts(pair_bad, "tt"))
    assert viol("trees_and_tents", pair_bad, inst) == ["pairing"]
    good = G("tt tr e e", "e e e e", "e e e tt", "e e e tr")
    assert viol("trees_and_tents", good, make("trees_and_tents", board, 4, counts(good, "tt"))) == []
    board2 = G("tr * * *", "* * * *", "* * * *", "* tr * *")
    touch = G("tr e e e", "tt e e e", "e tt e e", "e tr e e")
    assert viol("trees_and_tents", touch, make("trees_and_tents", board2, 4, counts(touch, "tt"))) == ["touching"]
    extra_tree = G("tt tr e e", "e e e e", "e tr e tt", "e e e tr")
    assert "symbols" in viol("trees_and_tents", extra_tree, make("trees_and_tents", board, 4, counts(good, "tt")))


# ----- deduction family ------------------------------------------------------------------------------------------
def test_light_up():
    board = G("* * *", "* w *", "* * *")
    inst = make("light_up", board, 3, {})
    assert viol("light_up", G("s e e", "e w e", "e e s"), inst) == []
    assert viol("light_up", G("s e e", "e w e", "e e e"), inst) == ["lit"]
    assert viol("light_up", G("s e s", "e w e", "e e s"), inst) == ["bulb_conflict"]
    numbered = make("light_up", G("* * *", "* 1 *", "* * *"), 3, {})
    assert viol("light_up", G("s e e", "e 1 e", "e e s"), numbered) == ["wall_number"]
    assert viol("light_up", G("e s e", "e 1 e", "e e e"), numbered) == ["lit"]
    assert "givens" in viol("light_up", G("s e e", "e e e", "e e s"), inst)


def test_field_explore_checks_numbers_not_just_givens():
    board = G("1 * *", "* * *", "* * *")
    inst = make("field_explore", board, 3, {"mines": 1})
    assert viol("field_explore", G("e e e", "e s e", "e e e"), inst) == []
    assert viol("field_explore", G("1 e e", "e s e", "e e e"), inst) == []
    # the released VGRP checker accepted these: givens kept, numbers wrong
    assert viol("field_explore", G("e e e", "e e e", "e e s"), inst) == ["numbers"]
    assert viol("field_explore", G("e e e", "e e e", "e e e"), inst) == ["numbers", "mine_count"]
    assert viol("field_explore", G("e e e", "e s e", "e e s"), inst) == ["mine_count"]
    assert "givens" in viol("field_explore", G("s e e", "e e e", "e e e"), inst)


def test_thermometers():
    thermos = [[[0, 0], [0, 1], [0, 2]], [[1, 0], [1, 1], [1, 2]], [[2, 2], [2, 1], [2, 0]]]
    good = G("s s e", "e e e", "e s s")
    assert viol("thermometers", good, make("thermometers", None, 3, {"thermometers": thermos, **counts(good)})) == []
    gap = G("s e s", "e e e", "e s s")
    assert viol("thermometers", gap, make("thermometers", None, 3, {"thermometers": thermos, **counts(gap)})) == ["thermo_fill"]
    wrong_end = G("s s e", "e e e", "s s e")  # filled from the far end of the third thermometer
    assert viol("thermometers", wrong_end, make("thermometers", None, 3, {"thermometers": thermos, **counts(wrong_end)})) == ["thermo_fill"]
    inst = make("thermometers", None, 3, {"thermometers": thermos, **counts(good)})
    inst.clues["rows"][1] = 1
    assert viol("thermometers", good, inst) == ["row_count"]
