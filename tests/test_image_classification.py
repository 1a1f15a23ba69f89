"""CLS-RL task layer: option lists, k-shot sampling, base/new split, prompts, rewards, lenient parser, metrics."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

import tasks.image_classification as ic
from mmsft.rewards import compute_rewards, get_reward


# ------------------------------------------------------------------------------------------------ option lists
@pytest.mark.parametrize("n, k", [(10, 10), (24, 24), (37, 37), (47, 47), (74, 74), (75, 30), (100, 40),
                                  (101, 40), (102, 40), (196, 78), (397, 100), (1000, 100)])
def test_option_count_matches_cls_rl(n: int, k: int) -> None:
    # EuroSAT 10, DTD 47, Pets 37 list all; Caltech/Food/Flowers/UCF/FGVC 40; Cars 78; ImageNet, SUN397 100.
    assert ic.option_count(n) == k


def test_option_count_rejects_empty() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        ic.option_count(0)


def test_build_options_contains_label_and_is_seeded() -> None:
    classes = [f"class {i}" for i in range(200)]
    for seed in range(20):
        label = classes[seed * 7]
        options = ic.build_options(label, classes, seed)
        assert len(options) == 80 and label in options and len(set(options)) == 80
        assert set(options) <= set(classes)
        assert ic.build_options(label, classes, seed) == options  # same seed, same list
    a = ic.build_options("class 0", classes, "s-1")
    b = ic.build_options("class 0", classes, "s-2")
    assert a != b
    positions = {ic.build_options("class 0", classes, s).index("class 0") for s in range(30)}
    assert len(positions) > 5  # the label is shuffled, not always first


def test_build_options_small_dataset_lists_all_classes_shuffled() -> None:
    classes = [f"c{i}" for i in range(24)]
    options = ic.build_options("c3", classes, 0)
    assert sorted(options) == sorted(classes)
    assert options != classes
    with pytest.raises(ValueError, match="not one of"):
        ic.build_options("zebra", classes, 0)


# ------------------------------------------------------------------------------------------------ sampling
def test_k_shot_sampler_is_deterministic_and_balanced() -> None:
    labels = [i % 5 for i in range(100)]
    first = ic.sample_k_shot(labels, 4, seed=3)
    assert first == ic.sample_k_shot(labels, 4, seed=3)
    assert first != ic.sample_k_shot(labels, 4, seed=4)
    assert len(first) == 20 and len(set(first)) == 20
    assert [labels[i] for i in first] == sorted(labels[i] for i in first)
    assert all(sum(labels[i] == c for i in first) == 4 for c in range(5))


def test_k_shot_sampler_small_classes_and_independence() -> None:
    labels = [0, 0, 1, 1, 1, 1, 1]
    assert sorted(ic.sample_k_shot(labels, 4, seed=0)[:2]) == [0, 1]  # class 0 has only 2 items: all of them
    repeated = ic.sample_k_shot(labels, 4, seed=0, repeat=True)
    assert len(repeated) == 8
    # picks of class 1 do not depend on the other classes present
    only_one = ic.sample_k_shot([1, 1, 1, 1, 1], 2, seed=9)
    with_more = ic.sample_k_shot([0, 0, 0] + [1] * 5, 2, seed=9)
    assert [i + 3 for i in only_one] == with_more[2:]
    with pytest.raises(ValueError, match="k"):
        ic.sample_k_shot(labels, 0, seed=0)


def test_base_new_split_is_coop_ceil_half() -> None:
    assert ic.split_base_new(["a", "b", "c", "d"]) == (["a", "b"], ["c", "d"])
    assert ic.split_base_new(["a", "b", "c", "d", "e"]) == (["a", "b", "c"], ["d", "e"])
    with pytest.raises(ValueError):
        ic.split_base_new(["a"])


# ------------------------------------------------------------------------------------------------ prompts
def test_prompts_are_verbatim() -> None:
    q = ic.build_question(["red circle", "blue star"])
    assert q == "What type of object is in the photo?\nPlease choose one from list [ red circle, blue star]."
    assert ic.format_prompt("Q", "think", "train") == (
        "Q\n Please output the thinking process in <think> </think> and final answer in <answer> </answer> tags.")
    assert ic.format_prompt("Q", "think", "eval") == (
        "Q First output the thinking process in <think> </think> and final answer in <answer> </answer> tags.")
    assert ic.format_prompt("Q", "nothink", "train") == "Q\n Please directly output the answer."
    assert ic.format_prompt("Q", "nothink", "eval") == "Q Please directly output the answer name."
    assert ic.question_prefix("EuroSAT") == "What type of object is in the centered satellite photo?"
    assert ic.question_prefix("dtd") == "What type of texture is in the photo?"
    assert ic.solution("red circle") == "<answer> red circle </answer>"
    with pytest.raises(ValueError, match="mode"):
        ic.format_prompt("Q", "cot", "train")


# ------------------------------------------------------------------------------------------------ rewards
def _samples(answers: list[str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=f"s{i}", answer=a, meta={}) for i, a in enumerate(answers)]


ACCURACY_CASES = [
    ("<think>round red</think><answer>red circle</answer>", "red circle", 1.0),
    ("<think>x</think><answer>  Red Circle \n</answer>", "red circle", 1.0),
    ("red circle", "red circle", 1.0),
    ("  RED CIRCLE  ", "red circle", 1.0),
    ("<answer>red square</answer>", "red circle", 0.0),
    ("it is a red circle", "red circle", 0.0),
    ("<answer>blue star</answer><answer>red circle</answer>", "red circle", 0.0),  # first tag counts
    ("<answer>red circle</answer>", "<answer> red circle </answer>", 1.0),  # solution-style ground truth
]


@pytest.mark.parametrize("completion, gt, expected", ACCURACY_CASES)
def test_cls_accuracy_golden(completion: str, gt: str, expected: float) -> None:
    assert ic.cls_accuracy(_samples([gt]), [completion]) == [expected]


FORMAT_CASES = [
    ("<think>a</think><answer>b</answer>", 1.0),
    ("<think>multi\nline</think>\n  <answer>b\nc</answer>", 1.0),
    ("<think></think><answer></answer>", 1.0),
    ("<answer>b</answer>", 0.0),
    ("<think>a</think><answer>b</answer> trailing", 0.0),
    ("prefix <think>a</think><answer>b</answer>", 0.0),
    ("<think>a</think>text<answer>b</answer>", 0.0),
    ("red circle", 0.0),
]


@pytest.mark.parametrize("completion, expected", FORMAT_CASES)
def test_cls_format_golden(completion: str, expected: float) -> None:
    assert ic.cls_format(_samples(["x"]), [completion]) == [expected]


EQUALITY_CASES = [
    ("red circle", "red circle", 1.0),
    ("red circle", "<answer> red circle </answer>", 1.0),
    ("red circle ", "red circle", 0.0),
    (" red circle", "red circle", 0.0),
    ("Red circle", "red circle", 0.0),
    ("red circle\n", "red circle", 0.0),
    ("<answer>red circle</answer>", "red circle", 0.0),
    ("<think>hm</think>red circle", "red circle", 0.0),
]


@pytest.mark.parametrize("completion, gt, expected", EQUALITY_CASES)
def test_cls_nothink_equality_golden(completion: str, gt: str, expected: float) -> None:
    assert ic.cls_nothink_equality(_samples([gt]), [completion]) == [expected]


def test_rewards_are_registered_and_read_the_answer_column() -> None:
    for name in ("cls_accuracy", "cls_format", "cls_nothink_equality"):
        assert callable(get_reward(name))
    samples = _samples(["ignored", "ignored"])
    completions = ["<think>t</think><answer>blue star</answer>", "blue star"]
    result = compute_rewards(["cls_accuracy", "cls_format"], [1.0, 1.0], samples, completions,
                             answer=["blue star", "blue star"])
    assert result.total == [2.0, 1.0]
    assert ic.cls_nothink_equality(samples, completions, solution=["<answer> blue star </answer>"] * 2) == [0.0, 1.0]
    names, weights = ic.REWARD_PRESETS["cls_rl"]
    assert names == ("cls_accuracy", "cls_format") and weights == (1.0, 1.0)


def test_reward_without_ground_truth_names_the_sample() -> None:
    with pytest.raises(ValueError, match="s0"):
        ic.cls_accuracy([SimpleNamespace(id="s0", answer=None, meta={})], ["x"])


# ------------------------------------------------------------------------------------------------ evaluation
PARSER_CASES = [
    ("<think>..</think><answer>  red circle </answer>", "red circle", True),
    ("<answer>It is a Red Circle.</answer>", "red circle", True),  # containment, case-insensitive
    ("  red circle\n", "red circle", True),
    ("red", "red circle", False),
    ("<answer>red square</answer>", "red circle", False),
    ("<answer>golden retriever</answer>", "golden_retriever", True),  # "_" -> " " retry
    ("Golden_Retriever", "golden retriever", True),
    ("", "red circle", False),
]


@pytest.mark.parametrize("output, gt, expected", PARSER_CASES)
def test_lenient_parser_golden(output: str, gt: str, expected: bool) -> None:
    assert ic.is_correct_lenient(output, gt) is expected


def test_parse_eval_answer() -> None:
    assert ic.parse_eval_answer("<think>a</think><answer>\n x y \n</answer>") == "x y"
    assert ic.parse_eval_answer("  plain \n") == "plain"


def test_harmonic_mean_and_evaluate_predictions() -> None:
    assert ic.harmonic_mean(0.8, 0.4) == pytest.approx(2 * 0.8 * 0.4 / 1.2)
    assert ic.harmonic_mean(0.0, 0.0) == 0.0
    assert ic.harmonic_mean(1.0, 0.0) == 0.0
    records = [
        {"split": "base", "answer": "red circle", "prediction": "<answer>red circle</answer>"},
        {"split": "base", "answer": "red circle", "prediction": "blue star"},
        {"split": "base", "answer": "blue star", "prediction": "blue star"},
        {"split": "base", "answer": "blue star", "prediction": "a blue star!"},
        {"meta": {"split": "new"}, "answer": "green square", "prediction": "green square"},
        {"split": "new", "answer": "green square", "prediction": "green"},
    ]
    out = ic.evaluate_predictions(records)
    assert out["base"] == 0.75 and out["new"] == 0.5
    assert out["hm"] == pytest.approx(0.6)
    assert (out["n_base"], out["n_new"]) == (4, 2)
    with pytest.raises(ValueError, match="split"):
        ic.evaluate_predictions([{"split": "train", "answer": "a", "prediction": "a"}])


def test_option_lists_drawn_with_random_module_only() -> None:
    # building options must not consume the global random stream (other seeded code stays reproducible)
    random.seed(5)
    expected = random.random()
    random.seed(5)
    ic.build_options("c1", [f"c{i}" for i in range(300)], 0)
    assert random.random() == expected
