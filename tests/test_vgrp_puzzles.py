"""VGRP-Bench puzzles (Ren et al., arXiv 2503.23064): generator -> verifier -> solver round trips, determinism,
renderers and generic adversarial boards for every one of the 20 puzzles."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from envs.vgrp import PUZZLE_NAMES, get_puzzle, render_image, render_text, solve, verify
from envs.vgrp.core import EMPTY, Instance
from envs.vgrp.registry import canonical_name
from envs.vgrp.solver import count_solutions, make_unique

ALL = list(PUZZLE_NAMES)


def _digest(names: list[str]) -> str:
    blob = [get_puzzle(p).generate(seed=s, difficulty=lvl).to_dict() for p in names
            for lvl in get_puzzle(p).sizes for s in (0, 1)]
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def test_instance_dict_validation():
    d = get_puzzle("sudoku").generate(seed=0).to_dict()
    with pytest.raises(ValueError, match="'board' must be a 4x4"):
        Instance.from_dict({**d, "board": d["board"][:3]})
    with pytest.raises(KeyError, match="solution"):
        Instance.from_dict({k: v for k, v in d.items() if k != "solution"})


def test_twenty_puzzles_and_aliases():
    assert len(ALL) == 20
    assert canonical_name("Trees-and-Tents") == "trees_and_tents"
    assert canonical_name("starbattle") == "star_battle"
    with pytest.raises(ValueError, match="expected one of"):
        canonical_name("chess")


@pytest.mark.parametrize("name", ALL)
def test_generated_solutions_verify_at_every_level(name):
    p = get_puzzle(name)
    for level, n in p.sizes.items():
        for seed in range(3):
            inst = p.generate(seed=seed, difficulty=level)
            assert inst.size == n and len(inst.board) == n and len(inst.solution) == n
            v = verify(p, inst.solution, inst)
            assert v.ok, (level, seed, v.violations)
            again = Instance.from_dict(json.loads(json.dumps(inst.to_dict())))
            assert verify(p, again.solution, again).ok


@pytest.mark.parametrize("name", ALL)
def test_solver_round_trip_with_trace(name):
    p = get_puzzle(name)
    for seed in range(3):
        inst = p.generate(seed=seed, difficulty="easy")
        res = solve(p, inst, record=True, max_nodes=50_000)
        assert res.solution is not None, (seed, res.nodes)
        assert verify(p, res.solution, inst).ok
        assert res.trace and res.trace[-1] == ("solved",)
        for r in range(inst.size):
            for c in range(inst.size):
                f = p.fixed(r, c, inst)
                assert f is None or res.solution[r][c] == f


def test_solver_trace_backtracks_and_uniqueness():
    p = get_puzzle("sudoku")
    inst = p.generate(size=4, seed=3, n_clues=0)
    assert count_solutions(p, inst, limit=2) == 2
    unique = make_unique(p, inst, random.Random(0))
    assert count_solutions(p, unique, limit=2) == 1
    kinds = set()
    for seed in range(10):
        res = solve(get_puzzle("star_battle"), get_puzzle("star_battle").generate(seed=seed, n_clues=0), record=True)
        kinds |= {ev[0] for ev in res.trace}
    assert {"place", "undo", "solved"} <= kinds


@pytest.mark.parametrize("name", ["sudoku", "star_battle", "binairo", "futoshiki", "kakurasu"])
def test_unique_generation(name):
    p = get_puzzle(name)
    inst = p.generate(seed=4, difficulty="easy", n_clues=0, unique=True)
    assert count_solutions(p, inst, limit=2) == 1
    assert verify(p, inst.solution, inst).ok
    assert inst.to_dict() == p.generate(seed=4, difficulty="easy", n_clues=0, unique=True).to_dict()


def test_generation_is_deterministic_and_seed_dependent():
    for name in ALL:
        p = get_puzzle(name)
        a, b, c = (p.generate(seed=s, difficulty="easy").to_dict() for s in (7, 7, 8))
        assert a == b
        assert a != c


def test_generation_is_identical_across_processes():
    names = ["jigsaw_sudoku", "hitori", "thermometers", "light_up", "killer_sudoku", "trees_and_tents"]
    code = f"from tests.test_vgrp_puzzles import _digest; print(_digest({names!r}))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == _digest(names)


@pytest.mark.parametrize("name", ALL)
def test_renderers(name):
    p = get_puzzle(name)
    inst = p.generate(seed=1, difficulty="easy")
    img = render_image(p, inst, px=200)
    assert img.shape == (200, 200, 3) and img.dtype == np.uint8 and img.std() > 5
    sol_img = render_image(p, inst, inst.solution, px=200)
    if p.name != "hitori":  # hitori boards show the numbers either way, shading differs
        assert not np.array_equal(img, sol_img) or inst.board == inst.solution
    assert np.array_equal(img, render_image(p, inst, px=200))
    text = render_text(p, inst)
    assert f"{inst.size}x{inst.size}" in text and text.isascii()
    assert len(text.splitlines()) >= inst.size + 2
    with pytest.raises(ValueError, match="image_px"):
        render_image(p, inst, px=10)


@pytest.mark.parametrize("name", ALL)
def test_bad_generation_arguments_raise(name):
    p = get_puzzle(name)
    with pytest.raises(ValueError, match="size"):
        p.generate(size=99)
    with pytest.raises(ValueError, match="difficulty"):
        p.generate(difficulty="impossible")
    with pytest.raises(ValueError, match="n_clues"):
        p.generate(n_clues=-1)


def _free_cells(p, inst):
    n = inst.size
    return [(r, c) for r in range(n) for c in range(n) if p.fixed(r, c, inst) is None]


@pytest.mark.parametrize("name", ALL)
def test_adversarial_generic(name):
    """Shape, completeness, givens, symbols, every single-cell change, random boards: all must fail."""
    p = get_puzzle(name)
    inst = p.generate(seed=2, difficulty="easy", n_clues=2 if name != "hitori" else None)
    n, sol = inst.size, inst.solution
    assert verify(p, sol[:-1], inst).violations == ["shape"]
    assert verify(p, [row[:-1] for row in sol], inst).violations == ["shape"]
    assert verify(p, "not a grid", inst).violations == ["shape"]
    free = _free_cells(p, inst)
    r, c = free[0]
    g = [row[:] for row in sol]
    g[r][c] = EMPTY
    assert "complete" in verify(p, g, inst).violations
    g[r][c] = "x"
    assert "symbols" in verify(p, g, inst).violations
    fixed = [(r, c) for r in range(n) for c in range(n) if p.fixed(r, c, inst) is not None]
    if fixed:
        r, c = fixed[0]
        g = [row[:] for row in sol]
        g[r][c] = next(s for s in p.symbols(n) if s != sol[r][c])
        assert "givens" in verify(p, g, inst).violations
    for r, c in free:
        for v in p.symbols(n):
            if v == sol[r][c] or (name == "hitori" and sol[r][c] == "e"):
                continue  # hitori: shading one more cell can be legal; un-shading never is
            g = [row[:] for row in sol]
            g[r][c] = v
            assert not verify(p, g, inst).ok, (r, c, v)
    rng = random.Random(0)
    for _ in range(5):
        g = [[p.fixed(r, c, inst) or rng.choice(p.symbols(n)) for c in range(n)] for r in range(n)]
        if g != sol:
            res = verify(p, g, inst)
            assert not res.ok or count_solutions(p, inst, limit=50) > 1


@pytest.mark.parametrize("name", ALL)
def test_medium_generation_fast_enough_for_tests(name):
    p = get_puzzle(name)
    inst = p.generate(seed=0, difficulty="medium")
    assert verify(p, inst.solution, inst).ok
    assert all(x == EMPTY or p.fixed(r, c, inst) is not None or name == "hitori"
               for r, row in enumerate(inst.board) for c, x in enumerate(row))
