"""tasks/puzzles: parsers, prompt diversity, verifiers, dataset builders and the two CLIs."""

import json
import random
from pathlib import Path

import pytest

from mmsft.cli import main
from tasks.puzzles import gp_task, sokoban_task
from tasks.puzzles.dispatch import call_with_accepted, is_vgrp
from tasks.puzzles.diversity import (BASE_ACTIONS, FAMILY_SPLITS, HELDOUT_WORDS, TRAIN_WORDS, parse_axes,
                                     sample_variant)
from tasks.puzzles.evaluate import evaluate_rows
from tasks.puzzles.parsing import ParseStats, parse_actions, parse_gp_answer
from tasks.puzzles.seeds import example_seed


@pytest.mark.parametrize("text, actions, outcome", [
    ("<think>go</think><answer>Right || Right || Up</answer>", [3, 3, 0], "ok"),
    ("Up", [0], "ok"),
    ("Answer: left, LEFT.", [2, 2], "ok"),
    ("<answer>Up Down</answer>", [0, 1], "ok"),
    ("<action>down</action>", [1], "ok"),
    ("<answer></answer>", [], "empty"),
    ("<answer>Upward</answer>", [], "unknown_action"),
    ("I think we should go somewhere", [], "unknown_action"),
])
def test_parse_actions(text, actions, outcome):
    result = parse_actions(text, BASE_ACTIONS)
    assert result.outcome == outcome and result.ok == (outcome == "ok")
    if result.ok:
        assert result.value == actions


def test_parse_actions_vocabularies_and_cap():
    emoji = ("⬆️", "⬇️", "⬅️", "➡️")
    assert parse_actions("<answer>⬆ || ➡️</answer>", emoji).value == [0, 3]
    assert parse_actions("<answer>North</answer>", ("North", "South", "West", "East")).value == [0]
    capped = parse_actions("<answer>Up || Up</answer>", BASE_ACTIONS, max_actions=1)
    assert not capped.ok and capped.outcome == "too_many_actions"


def test_parse_stats_count_unparsable():
    stats = ParseStats()
    for text in ["<answer>Up</answer>", "gibberish", "<answer></answer>", "Down"]:
        stats.add(parse_actions(text, BASE_ACTIONS))
    assert stats.as_dict() == {"total": 4, "unparsable": 2, "empty": 1, "ok": 2, "unknown_action": 1}


@pytest.mark.parametrize("text, formula, outcome", [
    ('{"cards": ["A"], "formula": "(1+2)*8"}', "(1+2)*8", "ok"),
    ("```json\n{'formula': '3*8',}\n```", "3*8", "ok"),
    ("<think>x</think> Formula: 3*8 = 24", "3*8", "ok"),
    ("3*8=24", "3*8", "ok"),
    ('{"cards": ["A"]}', None, "missing_formula"),
    ("{not json", None, "no_json"),
    ("", None, "empty"),
])
def test_parse_gp_answer(text, formula, outcome):
    result = parse_gp_answer(text)
    assert result.outcome == outcome
    if formula is not None:
        assert result.value["formula"] == formula


def test_diversity_families_are_disjoint_and_fake():
    assert not set(TRAIN_WORDS) & set(HELDOUT_WORDS)
    for axis, split in FAMILY_SPLITS.items():
        assert not set(split["train"]) & set(split["heldout"]), axis
    rng = random.Random(0)
    train = [sample_variant(rng, ("actions", "symbols", "cards"), "train") for _ in range(50)]
    held = [sample_variant(rng, ("actions", "symbols", "cards"), "heldout") for _ in range(50)]
    assert {v.action_family for v in train} <= set(FAMILY_SPLITS["actions"]["train"])
    assert {v.action_family for v in held} <= set(FAMILY_SPLITS["actions"]["heldout"])
    assert all(v.actions_shown == v.actions_verify for v in train + held)
    fake = sample_variant(rng, ("actions",), "fake")
    assert fake.fake and fake.actions_verify == BASE_ACTIONS and fake.actions_shown != BASE_ACTIONS
    assert parse_axes("all") == ("actions", "symbols", "cards") and parse_axes("none") == ()
    with pytest.raises(ValueError, match="axes"):
        parse_axes("colours")
    pinned = sample_variant(rng, (), "train", {"actions": "emoji"})
    assert pinned.action_family == "emoji"


def test_seeds_disjoint_between_splits():
    train = {example_seed("train", 0, i) for i in range(500)}
    test = {example_seed("test", 0, i) for i in range(500)}
    assert not train & test and max(train) < 2**31 <= min(test)
    assert example_seed("train", 1, 0) == example_seed("train", 1, 0)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _oracle_and_junk(rows, every=3):
    preds = []
    for i, row in enumerate(rows):
        text = row["messages"][-1]["content"][0]["text"] if i % every else "no idea"
        preds.append({"id": row["id"], "response": text})
    return preds


@pytest.mark.parametrize("fmt", ["step", "plan", "cot"])
def test_build_sokoban_cli_and_evaluate(tmp_path, fmt, capsys):
    out = tmp_path / "sok"
    argv = ["data", "build", "sokoban", "--split", "train", "--format", fmt, "--num", "12", "--seed", "3",
            "--out", str(out), "--prompt-diversity", "actions,symbols", "--modality", "both", "--cell-px", "8"]
    assert main(argv) == 0
    rows = _rows(out / "train.jsonl")
    assert len(rows) == 12
    for row in rows:
        user, assistant = row["messages"]
        assert user["content"][0]["type"] == "image" and (out / user["content"][0]["image"]).is_file()
        assert user["content"][1]["type"] == "text" and assistant["role"] == "assistant"
        verdict = sokoban_task.verify(row["answer"], assistant["content"][0]["text"])
        assert verdict.success, (row["id"], verdict)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] == 12
    assert main(argv) == 0 and _rows(out / "train.jsonl") == rows  # deterministic rebuild
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(json.dumps(p) for p in _oracle_and_junk(rows)) + "\n")
    report = tmp_path / "report.json"
    capsys.readouterr()
    assert main(["eval-puzzles", "--world", "sokoban", "--predictions", str(preds), "--data",
                 str(out / "train.jsonl"), "--out", str(report)]) == 0
    assert "overall" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["overall"]["n"] == 12 and data["overall"]["success_rate"] == pytest.approx(8 / 12)
    assert data["overall"]["outcomes"]["unknown_action"] == 4


def test_build_general_points_and_evaluate(tmp_path):
    out = tmp_path / "gp"
    assert main(["data", "build", "general-points", "--format", "cot", "--num", "9", "--out", str(out),
                 "--prompt-diversity", "cards", "--families", "heldout", "--modality", "image"]) == 0
    rows = _rows(out / "train.jsonl")
    families = {row["meta"]["variant"]["card_family"] for row in rows}
    assert families <= set(FAMILY_SPLITS["cards"]["heldout"])
    for row in rows:
        assert gp_task.verify(row["answer"], row["messages"][-1]["content"][0]["text"]).success
    report = evaluate_rows("general-points", _oracle_and_junk(rows), rows)
    assert report["overall"]["success_rate"] == pytest.approx(6 / 9)
    assert report["overall"]["outcomes"]["no_json"] == 3 and report["missing"] == 0
    partial = evaluate_rows("general-points", _oracle_and_junk(rows)[:4], rows)
    assert partial["missing"] == 5 and partial["overall"]["n"] == 9


def test_fake_variant_targets_use_base_semantics(tmp_path):
    out = tmp_path / "fake"
    assert main(["data", "build", "sokoban", "--format", "step", "--num", "4", "--out", str(out), "--split",
                 "test", "--prompt-diversity", "actions", "--families", "fake"]) == 0
    for row in _rows(out / "test.jsonl"):
        assert row["answer"]["actions"] == list(BASE_ACTIONS)
        text = row["messages"][-1]["content"][0]["text"]
        assert text.removeprefix("<answer>").removesuffix("</answer>") in BASE_ACTIONS


def test_cli_errors(tmp_path, capsys):
    assert main(["data", "build", "chess", "--out", str(tmp_path / "x")]) == 2
    assert main(["data", "build", "general-points", "--format", "step", "--out", str(tmp_path / "y")]) == 2
    assert main(["data", "build", "sokoban", "--suite", "99x99", "--out", str(tmp_path / "z")]) == 2
    assert main(["data", "build", "sokoban", "--prompt-diversity", "colours", "--out", str(tmp_path / "w")]) == 2
    assert main(["eval-puzzles", "--world", "sokoban", "--predictions", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "chess" in err and "step" in err and "99x99" in err and "colours" in err and "none.jsonl" in err


def test_vgrp_dispatch(tmp_path):
    assert is_vgrp("vgrp-sudoku") and not is_vgrp("vgrp-") and not is_vgrp("sokoban")

    def build_dataset(puzzle, out_dir, num=1, format="solution"):
        return {"puzzle": puzzle, "out_dir": out_dir, "num": num, "format": format}

    got = call_with_accepted(build_dataset, {"puzzle": "sudoku", "out_dir": "d", "num": 3, "seed": 1,
                                             "format": None})
    assert got == {"puzzle": "sudoku", "out_dir": "d", "num": 3, "format": "solution"}
    with pytest.raises(TypeError, match="needs"):
        call_with_accepted(build_dataset, {"num": 3})
    try:
        import tasks.vgrp.api  # noqa: F401
    except ModuleNotFoundError:
        assert main(["data", "build", "vgrp-sudoku", "--out", str(tmp_path / "v")]) == 2
        return
    out = tmp_path / "v"
    assert main(["data", "build", "vgrp-sudoku", "--num", "2", "--format", "solution", "--out", str(out)]) == 0
    data = next(out.glob("*.jsonl"))
    rows = _rows(data)
    preds = tmp_path / "vpreds.jsonl"
    preds.write_text("\n".join(json.dumps({"id": r["id"], "response": r["messages"][-1]["content"][0]["text"]})
                               for r in rows) + "\n")
    assert main(["eval-puzzles", "--world", "vgrp-sudoku", "--predictions", str(preds), "--data", str(data),
                 "--out", str(tmp_path / "vreport.json")]) == 0
    assert (tmp_path / "vreport.json").is_file()
    assert main(["data", "build", "vgrp-chess", "--out", str(tmp_path / "c")]) == 2


def test_eval_puzzles_survives_hostile_predictions(tmp_path, capsys):
    # one bad completion used to lose the whole run: RecursionError / ValueError from the formula checker, and a
    # lone surrogate echoed into the report could not be written as UTF-8
    out = tmp_path / "gp"
    assert main(["data", "build", "general-points", "--format", "plan", "--num", "6", "--out", str(out)]) == 0
    rows = _rows(out / "train.jsonl")
    hostile = ["(" * 10_000 + "1" + ")" * 10_000, "9" * 5000, '{"formula": "１２+１２"}', "{" * 70_000,
               '{"cards": ["\ud800"], "formula": "1"}', rows[5]["messages"][-1]["content"][0]["text"]]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "response": t}) + "\n" for r, t in zip(rows, hostile)))
    report_path = tmp_path / "report.json"
    assert main(["eval-puzzles", "--world", "general-points", "--predictions", str(preds), "--data",
                 str(out / "train.jsonl"), "--out", str(report_path), "--json"]) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["overall"]["n"] == 6 and report["overall"]["success_rate"] == pytest.approx(1 / 6)
    outcomes = report["overall"]["outcomes"]
    assert outcomes["too_long"] == 1 and outcomes["wrong_cards"] == 1 and outcomes["correct"] == 1
    assert outcomes["illegal_formula"] == 3  # 10k-deep brackets (too_long formula), 5,000 digits, full-width digits
    reasons = sorted(e["details"]["reason"] for e in report["examples"] if e["outcome"] == "illegal_formula")
    assert reasons == ["non_ascii_digit", "too_long", "too_long"]
