"""tasks/puzzles: the multi-turn Sokoban text bridge, the masked batch step and the registered puzzle rewards."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from envs.sokoban.env import SokobanEnv
from envs.sokoban.solver import solve_astar
from envs.sokoban.vector import SokobanVecEnv
from mmsft.rewards import compute_rewards
from tasks.puzzles import rewards as _rewards  # noqa: F401  (registers the rewards)
from tasks.puzzles.build import BuildConfig, build_general_points, build_sokoban
from tasks.puzzles.diversity import BASE_ACTIONS
from tasks.puzzles.sokoban_agent import SokobanTextTask


def test_masked_step_leaves_inactive_slots_untouched():
    vec = SokobanVecEnv(3, dim=(6, 6))
    vec.reset([1, 2, 3])
    before = vec.codes().copy()
    _, rewards, _, _, _ = vec.step(np.array([0, 1, 2]), active=np.array([False, True, False]))
    after = vec.codes()
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[2], after[2])
    assert rewards[0] == 0 and rewards[2] == 0 and list(vec.steps) == [0, 1, 0]
    with pytest.raises(ValueError, match="active"):
        vec.step(np.array([0, 0, 0]), active=np.array([True]))


def _oracle(task: SokobanTextTask, k: int) -> list[str]:
    out = []
    for i in range(task.vec.num_envs):
        state = task._state(i)
        plan = solve_astar(state).actions if not state.is_solved() else (0,)
        out.append("<answer>" + " || ".join(BASE_ACTIONS[a] for a in plan[:k]) + "</answer>")
    return out


def test_text_task_solves_with_oracle_and_counts_unparsable():
    vec = SokobanVecEnv(4, dim=(7, 7), num_boxes=2, max_steps=100)
    task = SokobanTextTask(vec, max_actions_per_turn=3)
    prompts = task.reset([11, 12], group_size=2)
    assert prompts[0] == prompts[1] and "at most 3 actions" in prompts[0]
    for _ in range(40):
        responses = _oracle(task, 3)
        responses[3] = "I refuse"
        rewards, done, infos = task.step_text(responses)
        if done[:3].all():
            break
    assert done[:3].all() and all(info["success"] for info in infos[:3])
    assert not done[3] and infos[3]["action_is_valid"] is False and rewards[3] == pytest.approx(-0.1)
    assert task.stats.counts["unknown_action"] >= 1 and task.stats.unparsable == task.stats.counts["unknown_action"]


def test_text_task_matches_single_env_rewards():
    vec = SokobanVecEnv(1, dim=(6, 6))
    task = SokobanTextTask(vec, max_actions_per_turn=4)
    task.reset([5])
    env = SokobanEnv(dim=(6, 6))
    env.reset(seed=5)
    plan = solve_astar(env.level).actions
    total = sum(env.step(a)[1] for a in plan[:4])
    rewards, _, _ = task.step_text(["<answer>" + " || ".join(BASE_ACTIONS[a] for a in plan[:4]) + "</answer>"])
    assert rewards[0] == pytest.approx(total)


def test_registered_puzzle_rewards(tmp_path):
    build_sokoban(BuildConfig(world="sokoban", out=tmp_path / "s", format="step", num=4))
    build_general_points(BuildConfig(world="general-points", out=tmp_path / "g", format="plan", num=4))
    rows = [json.loads(line) for d in ("s", "g") for line in (tmp_path / d / "train.jsonl").read_text().splitlines()]
    samples = [SimpleNamespace(id=r["id"], answer=r["answer"]) for r in rows]
    completions = [r["messages"][-1]["content"][0]["text"] for r in rows]
    completions[0] = "nonsense"
    result = compute_rewards(["puzzle_success", "puzzle_format"], [1.0, 0.5], samples, completions)
    assert result.parts["puzzle_success"] == [0.0] + [1.0] * 7
    assert result.parts["puzzle_format"] == [-1.0] + [0.0] * 7
    assert result.total[0] == pytest.approx(-0.5)
    gp_rewards = compute_rewards(["puzzle"], None, samples[4:], completions[4:]).total
    assert gp_rewards == [5.0] * 4
    with pytest.raises(Exception, match="puzzle answer"):
        compute_rewards(["puzzle"], None, [SimpleNamespace(id="x", answer=None)], ["Up"])


def test_puzzle_format_parts_count_the_outcomes(tmp_path):
    build_sokoban(BuildConfig(world="sokoban", out=tmp_path / "s", format="step", num=4))
    rows = [json.loads(line) for line in (tmp_path / "s" / "train.jsonl").read_text().splitlines()]
    samples = [SimpleNamespace(id=r["id"], answer=r["answer"]) for r in rows]
    completions = ["Up " * 30_000, "", "<answer>Jump</answer>", rows[3]["messages"][-1]["content"][0]["text"]]
    result = compute_rewards(["puzzle_format"], None, samples, completions)
    assert result.parts["puzzle_format"] == [-1.0, -1.0, -1.0, 0.0]
    assert result.parts["puzzle_format/too_long"] == [-1.0, 0.0, 0.0, 0.0]
    assert result.parts["puzzle_format/empty"] == [0.0, -1.0, 0.0, 0.0]
    assert result.parts["puzzle_format/unknown_action"] == [0.0, 0.0, -1.0, 0.0]
    assert result.means()["reward/puzzle_format/too_long"] == -0.25
