"""Golden evaluation tables: fixed canned predictions (right, wrong, unparsable, missing) on fixed built data give
exactly the tables below, for Sokoban (per-step), General Points and a VGRP puzzle (perception / answer split).
Every expected number is derived by hand in the comments."""

from __future__ import annotations

import json

import pytest

from tasks.puzzles.build import BuildConfig, build_general_points, build_sokoban
from tasks.puzzles.evaluate import evaluate_rows, format_report
from tasks.vgrp import api as vgrp_api


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _target(row) -> str:
    return row["messages"][-1]["content"][0]["text"]


def test_sokoban_golden_table(tmp_path):
    build_sokoban(BuildConfig(world="sokoban", out=tmp_path, split="test", format="step", num=6, seed=0,
                              prompt_style="compact"))
    rows = _rows(tmp_path / "test.jsonl")
    names = rows[4]["answer"]["actions"]
    wrong = next(a for a in range(4) if a not in rows[4]["answer"]["optimal_actions"])
    preds = [{"id": rows[0]["id"], "response": _target(rows[0])},            # right
             {"id": rows[1]["id"], "response": "<answer>Sideways</answer>"},   # unknown_action
             {"id": rows[2]["id"], "response": ""},                            # empty
             {"id": rows[3]["id"], "response": "I think " + _target(rows[3])},  # right (tolerant parse)
             {"id": rows[4]["id"], "response": f"<answer>{names[wrong]}</answer>"}]  # legal, not optimal
    # row 5 has no prediction: counted as "missing" (a failure), never dropped
    report = evaluate_rows("sokoban", preds, rows)
    overall = report["overall"]
    # success 2/6; parse ok 3/6 (rows 0, 3, 4); outcomes ok 3, unknown_action 1, empty 1, missing 1
    assert overall["n"] == 6 and report["missing"] == 1
    assert overall["success_rate"] == pytest.approx(2 / 6) and overall["parse_ok_rate"] == pytest.approx(3 / 6)
    assert overall["outcomes"] == {"empty": 1, "missing": 1, "ok": 3, "unknown_action": 1}
    table = format_report(report)
    assert "overall                     -                          6     0.333     0.500" in table
    assert table.splitlines()[-1] == "outcomes: empty=1, missing=1, ok=3, unknown_action=1"


def test_general_points_golden_table(tmp_path):
    build_general_points(BuildConfig(world="general-points", out=tmp_path, split="test", format="plan", num=4))
    rows = _rows(tmp_path / "test.jsonl")
    right = json.loads(_target(rows[1]))
    preds = [{"id": rows[0]["id"], "response": _target(rows[0])},                       # correct: +5
             {"id": rows[1]["id"], "response": json.dumps({**right, "formula": "1+"})},  # illegal_formula: -3
             {"id": rows[2]["id"], "response": "no json here at all"},                 # unparsable: -3
             {"id": rows[3]["id"], "response": _target(rows[3])}]                      # correct: +5
    report = evaluate_rows("general-points", preds, rows)
    overall = report["overall"]
    # success 2/4; mean reward (5 - 3 - 3 + 5) / 4 = 1.0; parse ok 3/4
    assert overall["success_rate"] == 0.5 and overall["mean_reward"] == pytest.approx(1.0)
    assert overall["parse_ok_rate"] == pytest.approx(0.75)
    assert overall["outcomes"]["correct"] == 2 and overall["outcomes"]["illegal_formula"] == 1
    assert sum(overall["outcomes"].values()) == 4


def test_vgrp_golden_table(tmp_path):
    vgrp_api.build_dataset("sudoku", tmp_path, num=4, seed=5, size=4, fmt="solution", with_image=True)
    rows = [json.loads(x) for x in (tmp_path / "data.jsonl").read_text().splitlines()]
    t = [json.loads(_target(r)) for r in rows]
    bad = [row[:] for row in t[2]["answer"]]
    bad[0][0], bad[0][1] = bad[0][1], bad[0][0]  # two digits swapped in row 0: a column rule breaks
    preds = [{"id": rows[0]["id"], "prediction": _target(rows[0])},                                # all right
             {"id": rows[1]["id"], "prediction": json.dumps({"answer": t[1]["answer"]})},         # no perception
             {"id": rows[2]["id"], "prediction": json.dumps({"perception": t[2]["perception"], "answer": bad})},
             {"id": rows[3]["id"], "prediction": "the answer is 42"}]                             # unparsable
    report = vgrp_api.evaluate_predictions(_write(tmp_path, preds), tmp_path / "data.jsonl")
    o = report["overall"]
    # image items: success needs answer AND perception -> only row 0: 1/4. perception right: rows 0, 2 -> 2/4.
    # answer right (rules): rows 0, 1 -> 2/4. answer given perception: row 0 of {0, 2} -> 1/2.
    # partial credit: perception cells 1 + 0 + 1 + 0 over 4 items; givens kept by rows 0, 1 and by row 2 unless a
    # given sits in one of its two swapped cells
    board2 = rows[2]["answer"]["board"]
    swapped_given = any(board2[0][c] != "*" for c in (0, 1))
    assert o == {"n": 4, "success": 0.25, "perception_acc": 0.5, "answer_acc": 0.5,
                 "answer_acc_given_perception": 0.5, "perception_cells": 0.5,
                 "answer_keeps_givens": 0.5 if swapped_given else 0.75}
    assert report["by_puzzle_size"]["sudoku/4x4"] == o
    assert report["parse"]["ok"] == 2 and report["parse"]["answer_only"] == 1 and report["parse"]["no_json"] == 1
    assert report["parse"]["unparsable"] == 1 and report["violations"]["unparsed"] == 1
    assert report["violations"].get("col_unique", 0) + report["violations"].get("givens", 0) >= 1


def _write(tmp_path, preds):
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in preds))
    return path
