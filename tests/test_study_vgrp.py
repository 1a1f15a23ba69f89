"""``mmsft study vgrp``: verdict and report from canned per-puzzle metrics (the study itself is run by hand;
docs/vgrp.md has its tables)."""

from __future__ import annotations

from tasks.vgrp.study import report, verdict


def _m(success: float, perception: float, answer: float, trained: bool, parse: dict | None = None) -> dict:
    return {"n": 16, "success": success, "perception_acc": perception, "answer_acc": answer,
            "answer_acc_given_perception": None if perception == 0 else min(1.0, answer / perception),
            "parse": parse or {"ok": 16, "no_json": 0, "total": 16, "unparsable": 0}, "violations": {},
            "trained": trained}


def test_verdict_direction_holds_and_fails():
    arms = {"s-sft": {"sudoku": _m(0.5, 1.0, 0.5, True), "futoshiki": _m(0.0, 0.2, 0.0, False)},
            "r-sft": {"sudoku": _m(0.25, 1.0, 0.25, True), "futoshiki": _m(0.0, 0.0, 0.0, False)}}
    text = "\n".join(verdict(arms, "sudoku"))
    assert "s-sft: trained puzzle success 0.50 (perception 1.00, answer 0.50); untrained puzzles success 0.00" in text
    assert "The paper's direction holds here: s-sft, r-sft" in text
    arms["r-sft"]["futoshiki"] = _m(0.25, 1.0, 0.25, False)
    assert "Transfer seen: r-sft" in "\n".join(verdict(arms, "sudoku"))
    none = {"s-sft": {"sudoku": _m(0.0, 0.9, 0.0, True)}}
    assert "not tested by this run" in "\n".join(verdict(none, "sudoku"))


def test_report_lists_parse_failures():
    arms = {"s-sft": {"sudoku": _m(0.5, 1.0, 0.5, True, {"ok": 10, "no_json": 4, "no_grid": 2, "total": 16,
                                                          "unparsable": 6})}}
    arms["s-sft"]["sudoku"]["violations"] = {"givens": 3, "row_unique": 5, "col_unique": 3, "complete": 1,
                                             "unparsed": 6}
    results = {"arms": arms, "overlap_dropped": {"sudoku/text/solution": 1}, "verdict": ["x"],
               "time": {"total": {"wall_s": 3.0, "cpu_s": 2.0}, "phases": {"train/s-sft": {"wall_s": 1, "cpu_s": 1}}}}
    md = report(results)
    assert ("| s-sft | sudoku | yes | 16 | 0.500 | 1.000 | 0.500 | 0.500 | - | - | 10 | no_json 4, no_grid 2 | "
            "row_unique 5, col_unique 3, givens 3 |") in md
    assert "dropped for overlapping training: {'sudoku/text/solution': 1}" in md and "CPU 2.0 s" in md
    arms["s-sft"]["sudoku"].update(perception_cells=0.769, perception_cells_if_all_empty=0.6125,
                                   answer_keeps_givens=0.0625)
    assert "| 0.500 | 0.769 (0.613) | 0.062 | 10 |" in report(results)
    text = "\n".join(verdict(arms, "sudoku"))
    assert ("s-sft partial credit: trained puzzle parse ok 0.62, perception cells 0.77 (all-empty reading 0.61), "
            "answers keeping the givens 0.06; untrained puzzles parse ok nan.") in text


def test_empty_share():
    from tasks.vgrp.study import empty_share

    assert empty_share([[["*", "1"], ["*", "*"]], [["2", "1"], ["*", "2"]]]) == round((3 / 4 + 1 / 4) / 2, 4)
    assert empty_share([]) is None


def test_study_targets_fit_the_generation_budget(tmp_path, tiny_models):
    """The study's rows-style targets (S-SFT and R-SFT, trained and untrained puzzles) fit the generation budget that
    :func:`token_budget` sets, end-of-turn token included, and every target parses back through the VGRP reader and
    passes the strict verifier; VGRP's 2-D lists would need about twice the tokens."""
    import json

    from transformers import AutoTokenizer

    from envs.vgrp import get_puzzle, verify
    from envs.vgrp.core import Instance
    from tasks.vgrp.parser import parse_response
    from tasks.vgrp.study import VGRPSettings, _build, token_budget

    s = VGRPSettings.quick(tmp_path)
    assert s.grid_style == "rows"
    tok = AutoTokenizer.from_pretrained(str(tiny_models["text"]))
    lengths = {}
    for style in ("rows", "lists"):
        s.grid_style = style
        paths = {(p, f): _build(p, tmp_path / f"{style}-{p}-{f}", 6, 0, f, False, s)
                 for p in (s.trained, *s.untrained) for f in ("solution", "reasoning")}
        for fmt in ("solution", "reasoning"):
            new_tokens, max_length = token_budget([v for k, v in paths.items() if k[1] == fmt], tiny_models["text"])
            for (puzzle, f), path in paths.items():
                if f != fmt:
                    continue
                for line in path.read_text().splitlines():
                    row = json.loads(line)
                    target = row["messages"][1]["content"][0]["text"]
                    n = len(tok(target)["input_ids"])
                    lengths.setdefault((style, fmt), []).append(n)
                    assert n + 1 <= new_tokens < max_length
                    parsed = parse_response(target)
                    inst = Instance.from_dict(row["answer"])
                    assert parsed.status == "ok" and parsed.perception == inst.board
                    assert verify(get_puzzle(puzzle), parsed.answer, inst).success
    rows, lists = max(lengths[("rows", "solution")]), max(lengths[("lists", "solution")])
    assert rows < 0.6 * lists, (rows, lists)
