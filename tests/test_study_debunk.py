"""``mmsft study debunk``: the verdict follows the measured table (canned numbers), the report shows success and
parse failures per suite, and the command is registered with argument checks (the study itself is run by hand:
docs/puzzles.md has its tables)."""

from __future__ import annotations

import pytest

from mmsft.cli import main
from tasks.puzzles.study_debunk import ARMS, GP_SUITES, SOKOBAN_SUITES, report, verdict


def _canned(success: dict[str, dict[str, float]], suites) -> dict:
    out = {}
    for arm in ARMS:
        out[arm] = {}
        for suite, spec in suites.items():
            out[arm][suite] = {"success": success[arm].get(suite, success[arm]["*"]), "parse_failure_rate": 0.25,
                               "turns": 3.0, "return": 0.0, "episodes": 8, "axis": spec[0]}
    return out


def test_verdict_reads_the_table():
    sok = _canned({"answer-only": {"*": 0.1, "in-dist": 0.8, "actions-fake": 0.7},
                   "answer-only+div": {"*": 0.5, "in-dist": 0.8},
                   "cot": {"*": 0.2, "in-dist": 0.9, "6x6-2boxes": 0.5, "8x8-1box": 0.5},
                   "cot+div": {"*": 0.6, "in-dist": 0.9}, "rl": {"*": 0.4, "in-dist": 0.85}}, SOKOBAN_SUITES)
    gp = _canned({arm: {"*": 0.0} for arm in ARMS}, GP_SUITES)
    lines = verdict({"sokoban": sok, "general_points": gp})
    text = "\n".join(lines)
    # held-out prompts: answer-only+div mean over (actions-heldout 0.5, symbols-heldout 0.5) vs answer-only 0.1
    assert "answer-only+div 0.50 is higher than answer-only 0.10 (holds)" in text
    # harder: cot (0.5 + 0.5) / 2 = 0.5 vs answer-only 0.1
    assert "cot 0.50 is higher than answer-only 0.10 (holds)" in text
    assert "cot+div held-out 0.60 / harder 0.60 vs rl 0.40 / 0.40 (holds" in text
    assert "answer-only 0.70" in text  # fake suite: the frozen-prompt check
    assert "general points: every arm is near 0 in distribution" in text
    # learned in distribution, but cot+div and rl near 0 off-distribution: "matches RL" is not claimed
    low = _canned({arm: {"*": 0.0, "in-dist": 0.5} for arm in ARMS}, GP_SUITES)
    assert "(not tested: both near 0; in distribution cot+div 0.50, rl 0.50)" in "\n".join(verdict({"gp": low}))


def test_report_has_success_and_parse_failures():
    sok = _canned({arm: {"*": 0.25} for arm in ARMS}, SOKOBAN_SUITES)
    results = {"worlds": {"sokoban": sok}, "verdict": ["v"],
               "time": {"total": {"wall_s": 10.0, "cpu_s": 5.0},
                        "phases": {"sokoban/train/cot": {"wall_s": 2.0, "cpu_s": 1.0}}}}
    md = report(results)
    assert "| answer-only | 0.250 | 0.250 | 0.250 | 0.250 | 0.250 | 0.250 | 0.250 |" in md
    assert "parse failures per turn" in md and "CPU 5.0 s" in md and "sokoban/train/cot 2.0 s wall / 1.0 s CPU" in md


def test_study_commands_are_registered(capsys):
    for command in (["study", "debunk", "--help"], ["study", "vgrp", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(command)
        assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out
    assert main(["study", "debunk", "--worlds", "chess", "--out", "/nonexistent/x"]) == 2
    assert "expected a comma list of sokoban, general_points" in capsys.readouterr().err
    assert main(["study", "vgrp", "--trained", "chess", "--out", "/nonexistent/x"]) == 2
    assert main(["study", "vgrp", "--untrained", "sudoku", "--out", "/nonexistent/x"]) == 2
    assert main(["study", "vgrp", "--workers", "0", "--out", "/nonexistent/x"]) == 2
    assert main(["study", "debunk", "--workers", "0", "--out", "/nonexistent/x"]) == 2
    assert "--workers 0: expected an int >= 1" in capsys.readouterr().err
