"""gymnasium environments for the 20 VGRP-Bench puzzles (Ren et al., arXiv 2503.23064): registration,
``check_env``, seeded determinism, rewards per mode, probes and the release-format reader."""

from __future__ import annotations

import json
import random

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.vgrp import PUZZLE_NAMES, get_puzzle
from envs.vgrp.core import Instance
from envs.vgrp.probes import cell_at_probe, valid_move_probe
from envs.vgrp.registration import PUZZLE_IDS, env_id
from envs.vgrp.release import read_release
from tasks.vgrp.prompts import build_target


def test_registration_covers_all_puzzles():
    assert tuple(sorted(PUZZLE_IDS)) == tuple(sorted(PUZZLE_NAMES))
    for name in PUZZLE_IDS:
        assert env_id(name) in gymnasium.registry


@pytest.mark.parametrize("name", PUZZLE_IDS)
def test_check_env(name):
    env = gymnasium.make(env_id(name), difficulty="easy", image_px=96)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("name", PUZZLE_IDS)
def test_seeded_reset_and_solution_step(name):
    a = gymnasium.make(env_id(name), obs_mode="both", image_px=96).unwrapped
    b = gymnasium.make(env_id(name), obs_mode="both", image_px=96).unwrapped
    oa, ia = a.reset(seed=11)
    ob, ib = b.reset(seed=11)
    assert oa["text"] == ob["text"] and np.array_equal(oa["image"], ob["image"])
    assert ia["instance"] == ib["instance"]
    assert oa["image"].shape == (96, 96, 3) and oa["image"].dtype == np.uint8
    inst = Instance.from_dict(ia["instance"])
    # a full JSON response with the right perception and answer succeeds under the strict (VGRP) reward
    _, reward, terminated, truncated, info = a.step(build_target(inst, inst.solution))
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)
    # the right answer with no perception gets nothing under strict, full marks under solution_only
    _, ib2 = b.reset(seed=11)
    _, reward, _, _, info = b.step(json.dumps({"answer": inst.solution}))
    assert reward == 0.0 and info["answer_correct"] and not info["perception_correct"]


def test_reward_modes_and_text_mode():
    env = gymnasium.make(env_id("sudoku"), obs_mode="text", reward="strict").unwrapped
    obs, info = env.reset(seed=0)
    assert set(obs) == {"text"} and "Board:" in obs["text"]
    inst = Instance.from_dict(info["instance"])
    _, reward, _, _, info = env.step(json.dumps({"answer": inst.solution}))
    assert reward == 1.0  # text mode needs no perception
    dense = gymnasium.make(env_id("sudoku"), obs_mode="image", image_px=96, reward="dense").unwrapped
    obs, info = dense.reset(seed=0)
    assert set(obs) == {"image"}
    inst = Instance.from_dict(info["instance"])
    _, reward, _, _, _ = dense.step(json.dumps({"perception": inst.board, "answer": inst.board}))
    assert reward == 0.5
    _, reward, terminated, _, info = dense.step("no json here")
    assert reward == 0.0 and info["parse_status"] == "no_json" and not info["action_is_valid"]


def test_retries_and_render_modes():
    env = gymnasium.make(env_id("binairo"), obs_mode="text", max_attempts=2, render_mode="ansi").unwrapped
    env.reset(seed=3)
    _, _, terminated, _, info = env.step("garbage")
    assert not terminated and info["attempts"] == 1
    _, _, terminated, _, _ = env.step("garbage")
    assert terminated
    assert "Board:" in env.render()
    img_env = gymnasium.make(env_id("binairo"), obs_mode="text", render_mode="rgb_array", image_px=128).unwrapped
    img_env.reset(seed=3)
    assert img_env.render().shape == (128, 128, 3)


def test_reset_with_given_instance_and_bad_options():
    p = get_puzzle("futoshiki")
    inst = p.generate(seed=5, difficulty="medium")
    env = gymnasium.make(env_id("futoshiki"), obs_mode="text").unwrapped
    _, info = env.reset(options={"instance": inst.to_dict()})
    assert info["instance"]["board"] == inst.board
    with pytest.raises(ValueError, match="obs_mode"):
        gymnasium.make(env_id("sudoku"), obs_mode="video")
    with pytest.raises(ValueError, match="reward"):
        gymnasium.make(env_id("sudoku"), reward="lenient")
    with pytest.raises(ValueError, match="size"):
        gymnasium.make(env_id("sudoku"), size=5)
    with pytest.raises(ValueError, match="puzzle"):
        env.reset(options={"instance": get_puzzle("sudoku").generate(seed=0)})


@pytest.mark.parametrize("name", PUZZLE_IDS)
def test_probes(name):
    p = get_puzzle(name)
    rng = random.Random(0)
    for seed in range(4):
        inst = p.generate(seed=seed, difficulty="easy")
        q = cell_at_probe(p, inst, rng)
        r, c = q["cell"]
        assert q["answer"] == inst.board[r][c] and q["answer"] in q["choices"]
        m = valid_move_probe(p, inst, rng)
        assert m["answer"] in ("yes", "no")
        r, c = m["cell"]
        if m["value"] == inst.solution[r][c]:
            assert m["answer"] == "no"  # a value from a valid solution never breaks a rule


def test_release_reader(tmp_path):
    folder = tmp_path / "sudoku_4x4"
    folder.mkdir()
    rows = [{"file_name": "sudoku-0.png", "initialization": str({"size": 4, "board": [[1, 0, 0, 4], [0, 0, 1, 0],
                                                                                      [0, 1, 0, 0], [4, 0, 0, 1]]}),
             "prompt": "You are a sudoku player...", "sample_answer": json.dumps({"perception": [], "answer": [
                 ["1", "3", "2", "4"], ["2", "4", "1", "3"], ["3", "1", "4", "2"], ["4", "2", "3", "1"]]})}]
    (folder / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    items = read_release(tmp_path)
    assert len(items) == 1
    item = items[0]
    assert item.puzzle == "sudoku" and item.size == 4 and item.board[0] == ["1", "*", "*", "4"]
    assert item.image_path == folder / "sudoku-0.png"
    inst = item.instance()
    from envs.vgrp import perception_correct, verify

    assert perception_correct(get_puzzle("sudoku"), [["1", "0", "e", "4"], ["*", "*", "1", "*"], ["*", "1", "*", "*"],
                                                     ["4", "*", "*", "1"]], inst)
    assert verify(get_puzzle("sudoku"), inst.solution, inst).ok
    with pytest.raises(FileNotFoundError):
        read_release(tmp_path / "missing")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"prompt": "x"}))
    with pytest.raises(KeyError, match="initialization"):
        read_release(tmp_path / "bad.jsonl", puzzle="sudoku")
