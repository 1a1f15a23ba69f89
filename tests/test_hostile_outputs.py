"""Hostile model outputs (issue 8, defect 5): every registered reward and every parser and verifier of model text is
total (returns a verdict or value, never raises) and fast (bounded CPU time per call) on seeded random strings and
adversarial ones: brackets nested 10,000 deep, 5,000-digit numbers, full-width and Arabic-Indic digits, 105k
characters of repeated tags (and the same just under the length cap), NUL bytes, lone surrogates, huge whitespace,
unterminated tags and right-to-left marks."""

from __future__ import annotations

import json
import math
import random
import re
import time
from fractions import Fraction
from types import SimpleNamespace
from typing import Any, Callable

import pytest

import tasks.image_classification.rewards as cls_rewards
import tasks.puzzles.rewards  # noqa: F401  (registers the puzzle rewards)
from envs.general_points.cards import HandConfig, sample_hand
from envs.general_points.env import GeneralPointsEnv, parse_action
from envs.general_points.formula import REASONS, FormulaError, evaluate
from envs.general_points.reward import DEFAULT_REWARDS, score_answer
from envs.sokoban.generator import GeneratorConfig, generate_level
from envs.sokoban.vector import SokobanVecEnv
from envs.verdict import MAX_RESPONSE_CHARS, TOO_LONG, Verdict
from envs.vgrp.answer import STATUSES, parse_response, perception_correct, strip_think, to_grid
from envs.vgrp.core import verify as vgrp_verify
from envs.vgrp.env import VGRPEnv
from envs.vgrp.registry import get_puzzle
from mmsft import rewards as reward_registry
from tasks.puzzles import gp_task, sokoban_task
from tasks.puzzles.diversity import BASE_ACTIONS
from tasks.puzzles.evaluate import evaluate_rows
from tasks.puzzles.parsing import OUTCOMES, answer_region, parse_actions, parse_gp_answer
from tasks.puzzles.sokoban_agent import SokobanTextTask
from tasks.vgrp.evaluate import probe_correct
from tasks.vgrp.parser import ParseStats as VGRPParseStats

CPU_BOUND_S = 1.0  # per call, process CPU time: linear work on <= 105k characters takes well under 0.1 s
CAP = MAX_RESPONSE_CHARS
TAGS = ("<answer>", "<think>", "</think>", "<action>", "```", "```json", "{", "[", "(", '{"a":', "answer: [",
        "Answer:", "formula:", "\n", " ", "'a'", "<answer></answer>", "perception [", "1,", "Up || ", "<think>x</think>")


def _adversarial() -> dict[str, str]:
    nested = 10_000
    out = {
        "nested_parens": "(" * nested + "1" + ")" * nested,
        "nested_square": "[" * nested + "1" + "]" * nested,
        "nested_curly": "{" * nested + "}" * nested,
        "nested_json_objects": '{"a":' * nested + "1" + "}" * nested,
        "nested_formula_in_json": '{"formula": "' + "(" * nested + "1" + ")" * nested + '"}',
        "nested_answer_grid": '{"answer": ' + "[" * nested + "]" * nested + "}",
        "digits_5000": "9" * 5000,
        "formula_5000_digits": "9" * 5000 + "*1",
        "json_number_5000": '{"formula": "1", "number": [' + "9" * 5000 + "]}",
        "json_formula_int_5000": '{"formula": ' + "9" * 5000 + "}",
        "tagged_5000_digits": "<answer>" + "9" * 5000 + "</answer>",
        "vgrp_grid_5000_digits": '{"answer": [[' + "9" * 5000 + "]]}",
        "python_literal_5000_digits": "{'answer': [[" + "9" * 5000 + "]]}",
        "fullwidth_digits": "１２+１２",
        "fullwidth_json": '{"formula": "１２+１２", "number": ["１２", "１２"]}',
        "arabic_indic_digits": "١٢+١٢",
        "arabic_indic_json": '{"formula": "١٢+١٢", "number": ["١٢", "١٢"]}',
        "superscript_digits": "²⁴",
        "nul_bytes": "\x00" * 1000,
        "nul_in_tags": "<answer>\x00Up\x00</answer>",
        "nul_in_json": '{"formula": "1\\u0000+2", "answer": [["\\u0000"]]}',
        "lone_surrogates": "\ud800\udfff\udc00",
        "surrogate_in_tags": "<answer>\ud800</answer><think>\udfff",
        "surrogate_in_json": '{"formula": "\ud800", "perception": [["\udc00"]], "answer": [["\ud800"]]}',
        "huge_spaces": " " * 100_000,
        "huge_whitespace_mix": " \t\r\n\x0b\x0c\u3000\u00a0" * 12_000,
        "newlines_under_cap": "\n" * (CAP - 1),
        "spaces_then_answer": " " * (CAP - 20) + "Answer: Up",
        "unterminated_answer": "<answer>Up",
        "unterminated_think": "<think>" + "x" * 50_000,
        "unterminated_fence": "```json\n{\"formula\": \"1+",
        "unterminated_json": '{"formula": "1+2", "answer": [["1", "2"]',
        "unterminated_string": '{"answer": "' + "[" * 1000,
        "answer_tags_no_close": "<answer><answer><answer>",
        "rtl_marks": "\u202e<answer>Up</answer>\u202c",
        "rtl_run": "\u200f" * 1000 + "<answer>\u200fUp\u200e</answer>",
        "rtl_in_formula": '{"formula": "\u200f12+12\u202e"}',
        "empty": "",
        "over_cap_valid_answer": "<answer>Up</answer>" + " " * CAP,
    }
    for tag in TAGS:
        out[f"repeat_105k_{tag!r}"] = tag * (105_000 // len(tag) + 1)
        out[f"repeat_under_cap_{tag!r}"] = (tag * (CAP // len(tag) + 1))[:CAP]
    return out


ADVERSARIAL = _adversarial()

_ALPHABET = (list("abcxyzUDLR0123456789 \t\n+-*/=()[]{}<>,;:|'\"`\\.")
             + ["<answer>", "</answer>", "<think>", "</think>", "<action>", "```", "Up", "Down", "formula",
                "answer", "perception", "１", "٣", "²", "\x00", "\ud800", "\u202e", "\u200f", "\u3000", "İ", "ß",
                '{"formula": "', '"answer": [[', "]]", "x", "×", "÷", "·", "e", "s", "*"])


def _random_strings(seed: int = 0, count: int = 150) -> dict[str, str]:
    rng = random.Random(seed)
    out = {}
    for i in range(count):
        n = rng.choice((0, 1, 3, 10, 40, 200, 1000, 3000))
        out[f"random_{i}"] = "".join(rng.choice(_ALPHABET) for _ in range(n))
    for i in range(4):  # a few long ones, just under the cap
        piece = "".join(rng.choice(_ALPHABET) for _ in range(200))
        out[f"random_long_{i}"] = (piece * (CAP // len(piece) + 1))[:CAP - i]
    return out


INPUTS = {**ADVERSARIAL, **_random_strings()}


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    value = fn()
    return value, time.process_time() - start


def _run_all(check: Callable[[str], None], inputs: dict[str, str] = INPUTS) -> None:
    """Feed every input; collect exceptions and slow calls, and fail once naming each offending input."""
    problems = []
    for name, text in inputs.items():
        try:
            _, spent = _timed(lambda: check(text))
        except Exception as exc:  # noqa: BLE001 - any exception is the failure under test
            problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:120]}")
            continue
        if spent > CPU_BOUND_S:
            problems.append(f"{name}: {spent:.2f} s CPU (bound {CPU_BOUND_S} s)")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------------------------
# every registered reward
# ---------------------------------------------------------------------------------------------------------------
_LEVEL = generate_level(GeneratorConfig(dim=(6, 6), num_boxes=1), 0)
_SOKOBAN_PLAN = {"world": "sokoban", "format": "plan", "level": {"rows": _LEVEL.to_ascii()},
                 "actions": list(BASE_ACTIONS), "optimal_len": len(_LEVEL.solution)}
_SOKOBAN_STEP = {**_SOKOBAN_PLAN, "format": "step", "optimal_actions": [_LEVEL.solution[0]]}
_HAND = sample_hand(HandConfig(), 0)
_GP = gp_task.make_answer(_HAND)
_PUZZLE_ANSWERS = (_SOKOBAN_PLAN, _SOKOBAN_STEP, _GP)


def _registered_rewards() -> dict[str, Callable[..., Any]]:
    """name -> function, whether the registry is a plain dict or a shared Registry of entries."""
    registry = reward_registry.REWARDS
    names = registry.names() if hasattr(registry, "names") else list(registry)  # names() also loads plugins
    out = {}
    for name in names:
        entry = registry[name] if isinstance(registry, dict) else registry.get(name)
        fn = getattr(entry, "fn", entry)
        if not getattr(fn, "__module__", "").startswith(("tests.", "test_")):  # fixtures other test files register
            out[name] = fn
    return out


REWARDS = _registered_rewards()


def _contexts(name: str) -> list[dict[str, Any]]:
    """Keyword arguments (samples + columns) under which a reward is called; puzzle rewards see every world."""
    if name.startswith("puzzle"):
        return [{"samples": [SimpleNamespace(id="p", answer=a, meta={})], "answer": [a]} for a in _PUZZLE_ANSWERS]
    return [{"samples": [SimpleNamespace(id="s", answer="cat", meta={"class": "cat"}, messages=[])]}]


def _check_reward_value(value: Any) -> None:
    parts = value.values() if isinstance(value, dict) else [value]
    for part in parts:
        assert isinstance(part, (int, float)) and not isinstance(part, bool) and math.isfinite(part), value


def test_every_registered_reward_is_covered():
    assert {"cls_accuracy", "cls_format", "cls_nothink_equality", "puzzle", "puzzle_success",
            "puzzle_format"} <= set(REWARDS)


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_registered_reward_is_total_and_fast(name):
    fn = REWARDS[name]
    for context in _contexts(name):
        columns = {k: v for k, v in context.items() if k != "samples"}
        benign = fn(context["samples"], ["cat"], **columns)  # a reward that cannot score plain text needs a context
        assert len(list(benign)) == 1, f"reward {name!r} needs a context in tests/test_hostile_outputs.py"

        def check(text: str) -> None:
            values = list(fn(context["samples"], [text], **columns))
            assert len(values) == 1
            _check_reward_value(values[0])

        _run_all(check)


def test_puzzle_rewards_count_too_long():
    values = REWARDS["puzzle_format"]([SimpleNamespace(id="p", answer=_GP)], ["1" * (CAP + 1)], answer=[_GP])
    assert values == [{TOO_LONG: -1.0}]
    assert REWARDS["puzzle"]([SimpleNamespace(id="p", answer=_GP)], ["1" * (CAP + 1)], answer=[_GP]) == [-3.0]


# ---------------------------------------------------------------------------------------------------------------
# every parser and verifier of model text
# ---------------------------------------------------------------------------------------------------------------
def _verdict(v: Any, outcomes: set[str] | None = None) -> None:
    assert isinstance(v, Verdict) and isinstance(v.reward, float) and math.isfinite(v.reward), v
    if outcomes is not None:
        assert v.outcome in outcomes, v.outcome


_GP_OUTCOMES = set(DEFAULT_REWARDS) | set(OUTCOMES)
_PUZZLE = get_puzzle("sudoku")
_INSTANCE = _PUZZLE.generate(size=4, seed=0)


def _formula(text: str) -> None:
    try:
        value, numbers = evaluate(text)
    except FormulaError as exc:  # the checker's documented failure, with a counted reason
        assert exc.reason in REASONS
        return
    assert isinstance(value, Fraction) and all(isinstance(n, int) for n in numbers)


def _gp_env_step(text: str) -> None:
    env = GeneralPointsEnv(obs_mode="text")
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(text)
    assert isinstance(reward, float) and terminated and info["outcome"] in set(DEFAULT_REWARDS) | {TOO_LONG}


def _sokoban_text_step(text: str) -> None:
    task = SokobanTextTask(SokobanVecEnv(1, dim=(6, 6)), max_actions_per_turn=3)
    task.reset([0])
    rewards, _, infos = task.step_text([text])
    assert math.isfinite(float(rewards[0])) and infos[0]["parse_outcome"] in OUTCOMES


def _vgrp_parse_and_verify(text: str) -> None:
    parsed = parse_response(text)
    assert parsed.status in STATUSES
    perception_correct(_PUZZLE, parsed.perception, _INSTANCE)
    for grid in (parsed.answer, to_grid(text)):
        if grid is not None:
            _verdict(vgrp_verify(_PUZZLE, grid, _INSTANCE))


def _vgrp_env_step(text: str) -> None:
    env = VGRPEnv("sudoku", size=4, obs_mode="text")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(text)
    assert isinstance(reward, float) and info["parse_status"] in STATUSES


PARSERS: dict[str, Callable[[str], None]] = {
    "general_points.formula.evaluate": _formula,
    "general_points.env.parse_action": lambda t: parse_action(t),
    "general_points.reward.score_answer(formula)": lambda t: _verdict(score_answer(_HAND, {"formula": t})),
    "general_points.reward.score_answer(fields)": lambda t: _verdict(
        score_answer(_HAND, {"cards": [t, t], "number": [t], "formula": t})),
    "general_points.reward.score_answer(parse_action)": lambda t: _verdict(score_answer(_HAND, parse_action(t))),
    "general_points.env.step": _gp_env_step,
    "puzzles.parsing.answer_region": lambda t: answer_region(t),
    "puzzles.parsing.parse_actions": lambda t: parse_actions(t, BASE_ACTIONS),
    "puzzles.parsing.parse_actions(max_actions=1)": lambda t: parse_actions(t, BASE_ACTIONS, max_actions=1),
    "puzzles.parsing.parse_gp_answer": lambda t: parse_gp_answer(t),
    "puzzles.sokoban_task.verify(plan)": lambda t: _verdict(sokoban_task.verify(_SOKOBAN_PLAN, t), set(OUTCOMES)),
    "puzzles.sokoban_task.verify(step)": lambda t: _verdict(sokoban_task.verify(_SOKOBAN_STEP, t), set(OUTCOMES)),
    "puzzles.gp_task.verify": lambda t: _verdict(gp_task.verify(_GP, t), _GP_OUTCOMES),
    "puzzles.evaluate.evaluate_rows": lambda t: evaluate_rows("general-points", [{"id": 0, "answer": _GP,
                                                                                   "response": t}]),
    "puzzles.sokoban_agent.step_text": _sokoban_text_step,
    "vgrp.answer.strip_think": lambda t: strip_think(t),
    "vgrp.answer.to_grid": lambda t: to_grid(t),
    "vgrp.answer.parse_response+verify": _vgrp_parse_and_verify,
    "vgrp.parser.ParseStats.parse": lambda t: VGRPParseStats().parse(t),
    "vgrp.evaluate.probe_correct": lambda t: probe_correct(t, {"answer": "yes", "choices": ["yes", "no"]}),
    "vgrp.env.step": _vgrp_env_step,
    "image_classification.extract_answer": lambda t: cls_rewards.extract_answer(t),
    "image_classification.parse_eval_answer": lambda t: cls_rewards.parse_eval_answer(t),
    "image_classification.is_correct_lenient": lambda t: cls_rewards.is_correct_lenient(t, "cat"),
    "image_classification.is_think_answer_format": lambda t: cls_rewards.is_think_answer_format(t),
    "image_classification.evaluate_predictions": lambda t: cls_rewards.evaluate_predictions(
        [{"split": "base", "answer": "cat", "prediction": t}]),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parser_or_verifier_is_total_and_fast(name):
    _run_all(PARSERS[name])


# ---------------------------------------------------------------------------------------------------------------
# the specific defects
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("formula, reason", [
    ("(" * 10_000 + "1" + ")" * 10_000, "too_long"),
    ("(" * 300 + "4*6" + ")" * 300, None),  # deep but under the length cap: evaluated without recursion
    ("9" * 5000, "too_long"),
    ("9" * 65 + "*1", "number_too_long"),
    ("１２+１２", "non_ascii_digit"),
    ("١٢+١٢", "non_ascii_digit"),
    ("12+１２", "non_ascii_digit"),
    ("2⁴", "non_ascii_digit"),
    ("1+2)", "unbalanced"),
    ("((1+2)", "unbalanced"),
    ("1/(2-2)", "division_by_zero"),
    ("1 2", "syntax"),
    ("12\x00+12", "symbol"),
])
def test_formula_checker_reasons(formula, reason):
    if reason is None:
        assert evaluate(formula) == (Fraction(24), [4, 6])
        return
    with pytest.raises(FormulaError) as info:
        evaluate(formula)
    assert info.value.reason == reason


def test_unicode_digits_are_not_numbers():
    hand = _hand_1234()
    assert score_answer(hand, {"formula": "1*2*3*4"}).outcome == "correct"
    assert score_answer(hand, {"formula": "１*２*３*４"}).outcome == "illegal_formula"
    assert score_answer(hand, {"number": ["1", "2", "3", "4"], "formula": "1*2*3*4"}).outcome == "correct"
    assert score_answer(hand, {"number": ["１", "２", "３", "٤"], "formula": "1*2*3*4"}).outcome == "wrong_numbers"
    assert parse_gp_answer("１２+１２").outcome == "no_json"
    assert parse_gp_answer("12+12").value == {"formula": "12+12"}


def _hand_1234():
    from envs.general_points.cards import LABEL_TO_RANK, Card, Hand

    return Hand(tuple(Card(LABEL_TO_RANK[label], "spades") for label in "A234"), (1, 2, 3, 4), 24, "")


def test_hostile_answers_get_counted_verdicts():
    deep = '{"formula": "' + "(" * 2000 + "1" + ")" * 2000 + '"}'
    verdict = gp_task.verify(_GP, deep)
    assert verdict.outcome == "illegal_formula" and verdict.details["reason"] == "too_long"
    assert gp_task.verify(_GP, "9" * (CAP + 1)).outcome == TOO_LONG
    assert sokoban_task.verify(_SOKOBAN_PLAN, "Up " * CAP).outcome == TOO_LONG
    assert parse_response("{" * (CAP + 1)).status == TOO_LONG
    env = GeneralPointsEnv()
    env.reset(seed=0)
    _, reward, _, _, info = env.step("(" * 10_000 + "1" + ")" * 10_000)
    assert reward == -3.0 and info["outcome"] == "illegal_formula" and not info["action_is_valid"]
    _, reward, _, _, info = env.step("(" * CAP + "1" + ")" * CAP)
    assert reward == -3.0 and info["outcome"] == TOO_LONG and not info["action_is_valid"]
    stats = VGRPParseStats()
    stats.parse("<think>" * 20_000)
    assert stats.as_dict()[TOO_LONG] == 1 and stats.unparsable == 1


@pytest.mark.parametrize("tag", ["<think>", "<answer>", "\n"])
def test_repeated_tags_parse_in_linear_time(tag):
    # 105k characters took 5-16 s in the VGRP parser (lazy <think> regex), the Sokoban parser (answer-line regex)
    # and the CLS-RL tag regexes; under the cap the same text must stay far below a second
    text = (tag * (CAP // len(tag) + 1))[:CAP]
    for fn in (parse_response, lambda t: parse_actions(t, BASE_ACTIONS), parse_gp_answer,
               cls_rewards.extract_answer, cls_rewards.parse_eval_answer):
        _, spent = _timed(lambda: fn(text))
        assert spent < CPU_BOUND_S, (fn, spent)
        _, spent = _timed(lambda: fn(tag * (105_000 // len(tag))))
        assert spent < CPU_BOUND_S, (fn, spent)


def test_cls_tag_rules_match_the_cls_rl_regexes():
    # the linear rewrites give exactly what CLS-RL's regexes give, on seeded random tag soup
    tagged = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
    evaluated = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
    formatted = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
    pieces = ["<answer>", "</answer>", "<think>", "</think>", " ", "\n", "a", "B", "\u00a0", "\x1c", "<", ">"]
    rng = random.Random(0)
    for _ in range(20_000):
        t = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        m = tagged.search(t)
        assert cls_rewards.extract_answer(t) == (m.group(1) if m else t).strip(), t
        m = evaluated.search(t)
        assert cls_rewards.parse_eval_answer(t) == (m.group(1) if m else t.strip()), t
        assert cls_rewards.is_think_answer_format(t) == (formatted.fullmatch(t) is not None), t


def test_over_cap_outputs_are_counted_in_the_cls_report():
    records = [{"split": "base", "answer": "cat", "prediction": "<answer>cat</answer>"},
               {"split": "base", "answer": "cat", "prediction": "<answer>cat</answer>" + " " * CAP}]
    out = cls_rewards.evaluate_predictions(records)
    assert out["base"] == 0.5 and out["n_too_long"] == 1.0


def test_json_answers_still_parse():
    # the hardening keeps ordinary answers working
    good = json.dumps({"cards": _HAND.labels, "number": list(_HAND.values), "formula": _HAND.solution})
    assert gp_task.verify(_GP, good).outcome == "correct"
    assert gp_task.verify(_GP, "<think>\n\n\nok</think>\n\nAnswer: " + good).outcome == "correct"
    plan = " || ".join(BASE_ACTIONS[a] for a in _LEVEL.solution)
    assert sokoban_task.verify(_SOKOBAN_PLAN, "\n\n\n  Answer:  " + plan).success
    assert sokoban_task.verify(_SOKOBAN_PLAN, "<THINK>x</THINK>" + plan).success
