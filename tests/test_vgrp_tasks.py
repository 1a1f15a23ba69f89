"""VGRP-Bench tasks (Ren et al., arXiv 2503.23064): tolerant parser, prompts, S-/R-SFT dataset builder and the
evaluation report through the public API in ``tasks.vgrp.api``."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from envs.vgrp import get_puzzle, render_text
from tasks.vgrp import api
from tasks.vgrp.parser import ParseStats, parse_response, perception_correct
from tasks.vgrp.prompts import build_prompt
from tasks.vgrp.reasoning import event_text, reasoning_target


@pytest.mark.parametrize("text,status,answer", [
    ('{"perception": [["*", 1]], "think": "a {b}", "answer": [[2, 1]]}', "ok", [["2", "1"]]),
    ('Here you go:\n```json\n{"perception": [["*"]], "answer": [["1","2"],["2","1"]],}\n```', "ok",
     [["1", "2"], ["2", "1"]]),
    ("{'Initial State': [['*']], 'Solution': [['s', 'e'], ['e', 's']]}", "ok", [["s", "e"], ["e", "s"]]),
    ('{"Thought": "x", "Solution": ["1 2", "2 1"]}', "answer_only", [["1", "2"], ["2", "1"]]),
    ('{"answer": ["se", "es"]}', "answer_only", [["s", "e"], ["e", "s"]]),
    ('{"answer": [[["3"], ["4"]]]}', "answer_only", [["3", "4"]]),
    ("Perception\n[[1, 2], [3, 4]]\nAnswer\n[[\"tt\", \"e\"]]", "ok", [["tt", "e"]]),
    ("<think>{not json}</think>{\"answer\": [[1]]}", "answer_only", [["1"]]),
    ('{"perception": [["*"]]}', "perception_only", None),
    ('{"answer": "no idea"}', "no_grid", None),
    ("I cannot solve this.", "no_json", None),
    ("", "empty", None),
    (None, "empty", None),
])
def test_parser(text, status, answer):
    parsed = parse_response(text)
    assert parsed.status == status
    assert parsed.answer == answer
    assert parsed.parse_ok == (answer is not None)


def test_parse_stats_count_unparsable():
    stats = ParseStats()
    for t in ('{"answer": [[1]]}', "nope", "", '{"perception": [[1]]}'):
        stats.parse(t)
    d = stats.as_dict()
    assert d["total"] == 4 and d["unparsable"] == 3 and d["no_json"] == 1 and d["answer_only"] == 1


def test_perception_normalisation():
    p = get_puzzle("sudoku")
    inst = p.generate(seed=0, difficulty="easy")
    seen = [["0" if x == "*" else x for x in row] for row in inst.board]
    assert perception_correct(p, seen, inst)
    seen[0][0] = "9"
    assert not perception_correct(p, seen, inst)
    assert not perception_correct(p, None, inst) and not perception_correct(p, [["1"]], inst)
    fe = get_puzzle("field_explore")
    inst = fe.generate(seed=0, difficulty="easy")
    zeroes = [["0" if x == "*" else x for x in row] for row in inst.board]
    assert perception_correct(fe, inst.board, inst)
    assert not perception_correct(fe, zeroes, inst)  # 0 is a number in minesweeper, not "empty"


def test_prompts_modes():
    p = get_puzzle("skyscraper")
    inst = p.generate(seed=0, difficulty="easy")
    vision = build_prompt(p, inst, "solution", with_image=True)
    text = build_prompt(p, inst, "reasoning", with_image=False)
    assert "Skyscraper player" in vision and "Board:" not in vision and "think" not in vision
    assert "Board:" in text and "Top clues" in text and '"think"' in text
    with pytest.raises(ValueError, match="fmt"):
        build_prompt(p, inst, "cot")


def test_reasoning_target_has_backtracking_and_is_capped():
    p = get_puzzle("star_battle")
    found_backtrack = False
    for seed in range(10):
        inst = p.generate(seed=seed, difficulty="easy", n_clues=0)
        think, answer, flags = reasoning_target(p, inst)
        found_backtrack |= "Backtrack" in think
        assert flags["solver_solved"]
    assert found_backtrack
    inst = get_puzzle("nonogram").generate(seed=0, difficulty="hard", n_clues=0)
    think, answer, flags = reasoning_target(get_puzzle("nonogram"), inst, max_steps=5, max_nodes=200)
    assert flags["think_truncated"] and "shortened" in think
    assert event_text(("dead", 1, 2)) == "(1,2) has no valid value: dead end."


@pytest.mark.parametrize("name", api.PUZZLES)
def test_build_and_evaluate_round_trip(tmp_path, name):
    fmt = "reasoning" if name in ("sudoku", "hitori", "thermometers") else "solution"
    counts = api.build_dataset(name, tmp_path, num=3, seed=1, difficulty="easy", fmt=fmt, with_image=True)
    assert counts["rows"] == 3 and counts["images"] == 3
    rows = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert len({r["id"] for r in rows}) == 3
    for row in rows:
        img_part, text_part = row["messages"][0]["content"]
        assert img_part["type"] == "image" and (tmp_path / img_part["image"]).exists()
        assert Image.open(tmp_path / img_part["image"]).size == (800, 800)
        assert text_part["type"] == "text" and row["messages"][-1]["role"] == "assistant"
        assert row["meta"]["puzzle"] == name
    preds = tmp_path / "pred.jsonl"
    with preds.open("w") as f:
        f.write(json.dumps({"id": rows[0]["id"], "prediction": rows[0]["messages"][-1]["content"][0]["text"]}) + "\n")
        target = json.loads(rows[1]["messages"][-1]["content"][0]["text"])
        f.write(json.dumps({"id": rows[1]["id"], "response": json.dumps({"answer": target["answer"]})}) + "\n")
        f.write(json.dumps({"id": rows[2]["id"], "prediction": "I give up"}) + "\n")
        f.write(json.dumps({"id": "unknown", "prediction": "{}"}) + "\n")
    report = api.evaluate_predictions(preds, tmp_path / "data.jsonl")
    o = report["overall"]
    assert report["n_scored"] == 3 and report["unmatched"] == 1
    assert o["success"] == pytest.approx(1 / 3, abs=1e-3) and o["answer_acc"] == pytest.approx(2 / 3, abs=1e-3)
    assert o["perception_acc"] == pytest.approx(1 / 3, abs=1e-3) and o["answer_acc_given_perception"] == 1.0
    assert report["parse"]["no_json"] == 1 and report["parse"]["unparsable"] == 1
    size = counts["size"]
    assert report["by_puzzle_size"][f"{name}/{size}x{size}"]["n"] == 3


def test_text_only_build_and_deterministic(tmp_path):
    a = api.build_dataset("kakuro", tmp_path / "a", num=4, seed=3, size=5, with_image=False)
    b = api.build_dataset("kakuro", tmp_path / "b", num=4, seed=3, size=5, with_image=False)
    assert a["images"] == 0 and not (tmp_path / "a" / "images").exists()
    ta = (tmp_path / "a" / "data.jsonl").read_text()
    assert ta == (tmp_path / "b" / "data.jsonl").read_text()
    row = json.loads(ta.splitlines()[0])
    assert [part["type"] for part in row["messages"][0]["content"]] == ["text"]
    # text-mode items are scored without perception
    pred = tmp_path / "p.jsonl"
    target = json.loads(row["messages"][-1]["content"][0]["text"])
    pred.write_text(json.dumps({"id": row["id"], "prediction": json.dumps({"answer": target["answer"]})}))
    assert api.evaluate_predictions(pred, tmp_path / "a" / "data.jsonl")["overall"]["success"] == 1.0


def test_inline_answers_and_bad_arguments(tmp_path):
    api.build_dataset("sudoku", tmp_path, num=2, seed=0, with_image=False)
    rows = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    pred = tmp_path / "inline.jsonl"
    pred.write_text("\n".join(json.dumps({**r, "prediction": r["messages"][-1]["content"][0]["text"]}) for r in rows))
    assert api.evaluate_predictions(pred)["overall"]["success"] == 1.0
    with pytest.raises(ValueError, match="puzzle"):
        api.build_dataset("chess", tmp_path, 1, 0)
    with pytest.raises(ValueError, match="fmt"):
        api.build_dataset("sudoku", tmp_path, 1, 0, fmt="cot")
    with pytest.raises(ValueError, match="num"):
        api.build_dataset("sudoku", tmp_path, 0, 0)
    with pytest.raises(ValueError, match="difficulty"):
        api.build_dataset("sudoku", tmp_path, 1, 0, difficulty="extreme")
    with pytest.raises(FileNotFoundError):
        api.evaluate_predictions(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("probe", ["cell_at", "valid_move"])
def test_probe_datasets_and_scoring(tmp_path, probe):
    from tasks.vgrp.dataset import build_probe_dataset

    counts = build_probe_dataset("light_up", tmp_path, num=4, seed=0, probe=probe, image_px=128)
    rows = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert counts["rows"] == 4 and all((tmp_path / r["messages"][0]["content"][0]["image"]).exists() for r in rows)
    pred = tmp_path / "p.jsonl"
    with pred.open("w") as f:
        for k, r in enumerate(rows):
            answer = r["messages"][-1]["content"][0]["text"]
            f.write(json.dumps({"id": r["id"], "prediction": f"The answer is {answer}" if k < 3 else "???"}) + "\n")
    report = api.evaluate_predictions(pred, tmp_path / "data.jsonl")
    assert report["probes"][f"{probe}/light_up"] == {"n": 4, "accuracy": 0.75}
    with pytest.raises(ValueError, match="probe"):
        build_probe_dataset("light_up", tmp_path, 1, 0, probe="causality")


@pytest.mark.parametrize("name", api.PUZZLES)
def test_rows_grid_style_reads_back_and_verifies(name):
    """``grid_style="rows"`` (one string per row) parses back to the same grids for every puzzle at each of its sizes,
    the solution passes the strict verifier, and it is shorter than VGRP's 2-D lists."""
    from envs.vgrp import verify
    from tasks.vgrp.prompts import build_target

    p = get_puzzle(name)
    for difficulty in sorted(p.sizes):
        inst = p.generate(seed=2, difficulty=difficulty)
        rows = build_target(inst, inst.solution, "think text", grid_style="rows")
        spaced = build_target(inst, inst.solution, "think text", grid_style="spaced")
        lists = build_target(inst, inst.solution, "think text")
        for text in (rows, spaced, lists):
            parsed = parse_response(text)
            assert parsed.status == "ok" and parsed.perception == inst.board and parsed.answer == inst.solution
            assert parsed.think == "think text"
        assert verify(p, parse_response(rows).answer, inst).success
        assert len(rows) <= len(spaced) < len(lists)
        if name in ("sudoku", "futoshiki", "binairo", "kakurasu") and inst.size < 10:  # spaced rows copy the board
            board = render_text(p, inst).splitlines()
            assert all(line in board for line in json.loads(spaced)["perception"])
        prompt = build_prompt(p, inst, "solution", with_image=False, grid_style="rows")
        assert '"perception": ["<row 0>", ...]' in prompt and "one string" in prompt


def test_grid_rows_falls_back_to_spaces_and_bad_style():
    from tasks.vgrp.prompts import build_target, grid_rows

    assert grid_rows([["*", "3"], ["1", "2"]]) == ["*3", "12"]
    # "101" would read back as three cells, "1e" mixes a digit and a letter: both keep their spaces
    assert grid_rows([["10", "1"], ["*", "e"], ["1", "e"]]) == ["10 1", "*e", "1 e"]
    assert grid_rows([["*", "3"], ["1", "2"]], spaced=True) == ["* 3", "1 2"]
    inst = get_puzzle("sudoku").generate(seed=0, difficulty="easy")
    with pytest.raises(ValueError, match="grid_style"):
        build_target(inst, inst.solution, grid_style="csv")
    with pytest.raises(ValueError, match="grid_style"):
        api.build_dataset("sudoku", "/nonexistent-never-created", 1, 0, grid_style="csv")


def test_partial_credit_metrics(tmp_path):
    """perception_cells and answer_keeps_givens: exact arithmetic on a hand-made 4x4 sudoku item."""
    from tasks.vgrp.evaluate import keeps_givens, perception_cells

    p = get_puzzle("sudoku")
    inst = p.generate(size=4, seed=0)
    board = [row[:] for row in inst.board]
    assert perception_cells(p, board, inst) == 1.0 and perception_cells(p, None, inst) == 0.0
    wrong = [row[:] for row in board]
    wrong[0][0] = "9" if wrong[0][0] != "9" else "8"
    assert perception_cells(p, wrong, inst) == 15 / 16
    assert perception_cells(p, board[:2], inst) == 8 / 16  # two rows missing: 8 cells wrong
    assert keeps_givens(inst.solution, inst) and not keeps_givens(inst.solution[:3], inst)
    r, c = next((r, c) for r, row in enumerate(board) for c, x in enumerate(row) if x != "*")
    broken = [row[:] for row in inst.solution]
    broken[r][c] = "1" if broken[r][c] != "1" else "2"
    assert not keeps_givens(broken, inst)
    api.build_dataset("sudoku", tmp_path, num=2, seed=0, size=4, with_image=False)
    rows = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    preds = tmp_path / "p.jsonl"
    first = rows[0]["answer"]
    half = [row if k < 2 else ["*"] * 4 for k, row in enumerate(first["board"])]  # rows 2-3 read as empty
    cells = sum(x == "*" for row in first["board"][2:] for x in row)
    preds.write_text(json.dumps({"id": rows[0]["id"], "prediction": json.dumps({"perception": half,
                                                                               "answer": first["solution"]})}) + "\n" +
                     json.dumps({"id": rows[1]["id"], "prediction": "no"}) + "\n")
    o = api.evaluate_predictions(preds, tmp_path / "data.jsonl")["overall"]
    assert o["perception_cells"] == round((8 + cells) / 16 / 2, 4)
    assert o["answer_keeps_givens"] == 0.5 and o["answer_acc"] == 0.5
