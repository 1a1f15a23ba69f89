"""Sokoban levels, generator and solvers (envs/sokoban)."""

import subprocess
import sys

import numpy as np
import pytest

from envs.sokoban.core import REWARD_PRESETS, SokobanCore, reward_config
from envs.sokoban.generator import GeneratorConfig, generate_level
from envs.sokoban.level import BOX, PLAYER, TARGET, WALL, Level, apply_actions
from envs.sokoban.solver import Unsolvable, solve, solve_astar, solve_bfs

SMALL = GeneratorConfig(dim=(6, 6), num_boxes=1)
TWO = GeneratorConfig(dim=(7, 7), num_boxes=2)

LEVEL_ROWS = ["######",
              "#    #",
              "# $. #",
              "# @  #",
              "######"]


def test_ascii_and_codes_round_trip():
    level = Level.from_ascii(LEVEL_ROWS)
    assert level.to_ascii() == LEVEL_ROWS
    assert Level.from_codes(level.codes()) == level
    codes = level.codes()
    assert codes[0, 0] == WALL and codes[2, 2] == BOX and codes[2, 3] == TARGET and codes[3, 2] == PLAYER
    assert Level.from_dict(level.to_dict()) == level


@pytest.mark.parametrize("rows, match", [
    (["####", "#@?#", "####"], "symbol"),
    (["#####", "# @ #", "#####"], None),
    (["#####", "#@$ #", "#####"], "boxes but"),
    (["#####", "#@$.", "#####"], "wall border"),
])
def test_level_validation(rows, match):
    if match is None:
        Level.from_ascii(rows)
    else:
        with pytest.raises(ValueError, match=match):
            Level.from_ascii(rows)


def test_generator_is_deterministic_and_solution_replays():
    for seed in range(30):
        a, b = generate_level(SMALL, seed), generate_level(SMALL, seed)
        assert a == b and a.solution == b.solution
        assert not a.is_solved()
        boxes, _, _ = apply_actions(a, a.solution)
        assert boxes == a.targets
    hashes = {generate_level(SMALL, s).content_hash() for s in range(30)}
    assert len(hashes) > 20


def test_generator_same_level_in_another_process():
    level = generate_level(TWO, 12345)
    code = ("from envs.sokoban.generator import GeneratorConfig, generate_level;"
            "print(generate_level(GeneratorConfig(dim=(7, 7), num_boxes=2), 12345).content_hash())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == level.content_hash()


def test_generator_difficulty_knobs():
    hard = GeneratorConfig(dim=(7, 7), num_boxes=1, min_pushes=3)
    for seed in range(10):
        level = generate_level(hard, seed)
        assert len(solve_astar(level).pushes) >= 3
    capped = GeneratorConfig(dim=(7, 7), num_boxes=1, min_pushes=1, max_pushes=1)
    assert all(len(solve_astar(generate_level(capped, s)).pushes) == 1 for s in range(10))


@pytest.mark.parametrize("kwargs", [dict(dim=(4, 6)), dict(num_boxes=0), dict(min_pushes=0),
                                    dict(min_pushes=3, max_pushes=2), dict(max_tries=0)])
def test_generator_config_errors(kwargs):
    with pytest.raises(ValueError):
        GeneratorConfig(**kwargs)


def test_generator_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        generate_level(SMALL, -1)


def test_astar_is_move_optimal_like_bfs():
    for cfg in (SMALL, TWO):
        for seed in range(15):
            level = generate_level(cfg, seed)
            a, b = solve_astar(level), solve_bfs(level)
            assert len(a) == len(b) <= len(level.solution)
            for sol in (a, b):
                assert apply_actions(level, sol.actions)[0] == level.targets


def test_solver_push_trace_matches_actions():
    level = generate_level(TWO, 3)
    sol = solve_astar(level)
    boxes = level.boxes
    seen = []
    state = level
    for a in sol.actions:
        new_boxes, player, _ = apply_actions(state, [a])
        if new_boxes != boxes:
            moved_from = (boxes & ~new_boxes).bit_length() - 1
            moved_to = (new_boxes & ~boxes).bit_length() - 1
            seen.append((moved_from, moved_to))
        boxes = new_boxes
        state = Level(level.height, level.width, level.walls, level.targets, boxes, player)
    assert tuple(seen) == sol.pushes


def test_unsolvable_level_raises():
    dead = Level.from_ascii(["######", "#$  .#", "#  @ #", "######"])  # box in a corner
    with pytest.raises(Unsolvable):
        solve_astar(dead)
    with pytest.raises(Unsolvable):
        solve_bfs(dead)
    with pytest.raises(ValueError, match="method"):
        solve(dead, "dfs")


def test_core_step_rewards_gym_sokoban():
    level = Level.from_ascii(LEVEL_ROWS)
    core = SokobanCore(level, reward_config("gym_sokoban"))
    reward, solved, moved = core.step(2)  # left: free move
    assert moved and not solved and reward == pytest.approx(-0.1)
    core = SokobanCore(level, reward_config("gym_sokoban"))
    reward, solved, moved = core.step(0)  # up: pushes the box (2,2) -> (1,2), off any target
    assert moved and reward == pytest.approx(-0.1) and core.boxes == 1 << (1 * 6 + 2)
    core = SokobanCore(level, reward_config("gym_sokoban"))
    core.step(2)  # (3,1)
    core.step(0)  # (2,1)
    reward, solved, moved = core.step(3)  # push box (2,2) -> (2,3) onto the target
    assert moved and solved and reward == pytest.approx(-0.1 + 1.0 + 10.0)
    reward, solved, moved = core.step(3)  # push it off again
    assert moved and not solved and reward == pytest.approx(-0.1 - 1.0)


def test_blocked_move_is_noop_and_presets():
    level = Level.from_ascii(["#####", "#@  #", "# $.#", "#####"])
    core = SokobanCore(level, REWARD_PRESETS["sparse"])
    reward, solved, moved = core.step(0)
    assert not moved and reward == 0.0 and core.player == level.player
    with pytest.raises(ValueError, match="reward"):
        reward_config("dense")


def test_codes_dtype():
    codes = generate_level(SMALL, 0).codes()
    assert codes.dtype == np.uint8 and codes.shape == (6, 6)


def test_boxoban_reader(tmp_path):
    from envs.sokoban.boxoban import load_boxoban, parse_boxoban
    from envs.sokoban.level import solved_after

    text = "; 0\n" + "\n".join(LEVEL_ROWS) + "\n\n; 1\n" + "\n".join(["#####", "#@$.#", "#####"]) + "\n"
    levels = parse_boxoban(text)
    assert [lv.num_boxes for lv in levels] == [1, 1] and levels[0] == Level.from_ascii(LEVEL_ROWS)
    (tmp_path / "000.txt").write_text(text)
    assert load_boxoban(tmp_path) == levels == load_boxoban(tmp_path / "000.txt")
    assert solved_after(levels[1], [3]) == 1 and solved_after(levels[1], [2, 2]) is None
    with pytest.raises(ValueError, match="level '0'"):
        parse_boxoban("; 0\n#####\n#@?.#\n#####\n")
    with pytest.raises(FileNotFoundError):
        load_boxoban(tmp_path / "missing.txt")
