"""General Points: solver, formula checker, reward table, hands, renderer, gymnasium env."""

from collections import Counter
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401
from envs.general_points.cards import Card, CardValues, Hand, HandConfig, card_values, sample_hand
from envs.general_points.env import GeneralPointsEnv
from envs.general_points.formula import FormulaError, evaluate
from envs.general_points.render import card_tile, render_cards
from envs.general_points.reward import score_answer
from envs.general_points.solver import solve, solve_with_steps


@pytest.mark.parametrize("obs_mode", ["text", "image", "both"])
def test_check_env(obs_mode):
    env = gym.make("mmsft/GeneralPoints-v0", obs_mode=obs_mode, card_width=32)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("values, solvable", [((4, 7, 8, 8), True), ((1, 1, 1, 1), False), ((3, 3, 8, 8), True),
                                              ((1, 5, 5, 5), True), ((10, 10, 10, 10), False)])
def test_solver(values, solvable):
    formula = solve(values)
    assert (formula is not None) == solvable
    if formula is not None:
        value, numbers = evaluate(formula)
        assert value == 24 and Counter(numbers) == Counter(values)


def test_solver_steps_and_other_targets():
    formula, steps = solve_with_steps((9, 11, 13, 10, 5))
    assert steps[-1].endswith("= 24") and evaluate(formula)[0] == 24
    assert evaluate(solve((2, 3, 4), target=10))[0] == 10


@pytest.mark.parametrize("formula, value", [("(1+2)*8", 24), ("8/(3-8/3)", 24), ("[2 x 3] × 4", 24),
                                            ("12 ÷ 4", 3), ("2-3-4", -5), ("2*(3+4)", 14)])
def test_formula_evaluate(formula, value):
    assert evaluate(formula)[0] == Fraction(value)


@pytest.mark.parametrize("formula", ["", "1+", "(1+2", "1/0", "2**3", "-1+25", "1.5*16", "import os", "1 2"])
def test_formula_illegal(formula):
    with pytest.raises(FormulaError):
        evaluate(formula)


def _hand(labels, values):
    from envs.general_points.cards import LABEL_TO_RANK
    return Hand(tuple(Card(LABEL_TO_RANK[l], "spades") for l in labels), tuple(values), 24, "")


@pytest.mark.parametrize("answer, outcome, reward", [
    ({"cards": ["A", "2", "3", "4"], "formula": "1*2*3*4"}, "correct", 5.0),
    ({"formula": "(4+2)*(3+1)"}, "correct", 5.0),
    ({"formula": "1+2+3+4"}, "partial", 1.0),
    ({"formula": "2*3*4"}, "partial", 1.0),
    ({"formula": "6*4"}, "wrong_numbers", -2.0),
    ({"formula": "1*2*3*4*1"}, "wrong_numbers", -2.0),
    ({"number": [1, 2, 3, 5], "formula": "1*2*3*4"}, "wrong_numbers", -2.0),
    ({"cards": ["A", "2", "3", "K"], "formula": "1*2*3*4"}, "wrong_cards", -1.5),
    ({"formula": "no solution"}, "no_solution", -1.0),
    ({}, "no_solution", -1.0),
    ({"formula": "1*2*3*4)"}, "illegal_formula", -3.0),
])
def test_reward_table(answer, outcome, reward):
    verdict = score_answer(_hand(["A", "2", "3", "4"], [1, 2, 3, 4]), answer)
    assert verdict.outcome == outcome and verdict.reward == reward and verdict.success == (outcome == "correct")


def test_hands_deterministic_solvable_and_ood():
    cfg = HandConfig()
    assert sample_hand(cfg, 3) == sample_hand(cfg, 3)
    assert len({sample_hand(cfg, s).labels.__repr__() for s in range(20)}) > 15
    ood = HandConfig(values=card_values("face_ood"), force_face_card=True, num_cards=5)
    for seed in range(10):
        hand = sample_hand(ood, seed)
        assert any(c.rank > 10 for c in hand.cards) and len(hand.cards) == 5
        assert all(v == (c.rank if c.rank <= 13 else None) for c, v in zip(hand.cards, hand.values))
        assert evaluate(hand.solution)[0] == 24


def test_card_values_specs():
    assert card_values("11,12,13") == CardValues(11, 12, 13)
    assert card_values("all5").value(13) == 5 and card_values("face10").value(1) == 1
    with pytest.raises(ValueError, match="card values"):
        card_values("weird")
    with pytest.raises(ValueError, match="num_cards"):
        HandConfig(num_cards=7)


def test_card_render_deterministic_and_cached():
    cards = [Card(1, "spades"), Card(12, "hearts"), Card(10, "diamonds"), Card(7, "clubs")]
    a, b = render_cards(cards, 40), render_cards(cards, 40)
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.shape[2] == 3
    assert card_tile(12, "hearts", 40) is card_tile(12, "hearts", 40)
    assert not np.array_equal(card_tile(12, "hearts", 40), card_tile(13, "hearts", 40))
    with pytest.raises(ValueError, match="suit"):
        card_tile(2, "stars", 40)


def test_env_step_scores_answers():
    env = GeneralPointsEnv(num_cards=4)
    obs, info = env.reset(seed=11)
    assert "Cards:" in obs["text"]
    _, reward, terminated, truncated, info2 = env.step('{"formula": "%s"}' % info["solution"])
    assert reward == 5.0 and terminated and not truncated and info2["success"]
    _, reward, *_ = env.step("((")
    assert reward == -3.0
    with pytest.raises(TypeError, match="answer text"):
        env.step(3)
    assert GeneralPointsEnv().reset(seed=11)[0] == obs
