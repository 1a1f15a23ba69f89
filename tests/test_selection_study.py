"""The data-selection study: the toy world's splits, the verdict rule, the plugin command, and a two-step smoke run
of the whole protocol (base → random / q_tuning / stat → results table)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tasks.data_selection.study import METHODS, StudyConfig, markdown, run_study, verdict
from tasks.data_selection.world import FILLERS, SKILLS, answer_word, build, s3ft_judge


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_world_splits_are_deterministic_and_disjoint(tmp_path):
    a, b = build(tmp_path / "a", seed=3, noise=0.3), build(tmp_path / "b", seed=3, noise=0.3)
    assert all(Path(a[k]).read_text() == Path(b[k]).read_text() for k in a)
    train, held = _rows(a["train"]), _rows(a["id"])
    assert len(train) == 3 * 8 * 3 * len(FILLERS) and len(held) == 3 * 8 * 2
    assert not {r["messages"][0]["content"] for r in train} & {r["messages"][0]["content"] for r in held}
    noisy = [r for r in train if r["meta"]["noisy"]]
    assert 0.15 < len(noisy) / len(train) < 0.45  # 30 % noise, 288 rows
    for r in train:
        skill = r["meta"]["skills"][0]
        assert len(r["meta"]["candidates"]) == 2 and answer_word(r["answer"]) in SKILLS[skill].values()
    assert not any(r["meta"]["noisy"] for r in _rows(build(tmp_path / "c", seed=3, noise=0.0)["train"]))


def test_answer_word_and_judge():
    from mmsft.data.schema import sample_from_dict

    assert answer_word("It is Blue, I think.") == "blue" and answer_word("nothing here") is None
    assert answer_word("none done") is None  # whole words only: "one" is not inside "none"
    gold = sample_from_dict({"id": "x", "messages": [{"role": "user", "content": "q"},
                                                     {"role": "assistant", "content": "The answer is red."}]}, "m")
    assert s3ft_judge(gold, "red") and not s3ft_judge(gold, "blue, not red")
    assert answer_word("z" * 1_000_000) is None  # hostile length: bounded


def test_verdict_rule():
    ref = {"id": 0.5, "id_n": 100, "probe": 0.8, "probe_n": 100}
    better = {"id": 0.7, "id_n": 100, "probe": 0.9, "probe_n": 100}
    assert verdict("grape", better, ref)[0] == "holds"  # +0.2 vs se ≈ 0.069
    assert verdict("grape", {**better, "id": 0.3}, ref)[0] == "does not hold"
    assert verdict("grape", {**better, "id": 0.52}, ref)[0] == "inconclusive"
    assert verdict("s3ft", better, ref)[0] == "holds"  # less forgetting (probe higher) and ID up


def test_plugin_command_and_entry_point():
    from tasks.data_selection.plugin import COMMANDS

    module, _ = COMMANDS[("study", "data-selection")]
    assert module == "tasks.data_selection.cli_study"
    from mmsft.plugins import load_plugins, plugin_commands

    load_plugins(["tasks.data_selection.plugin"])  # what the entry point does once the package is reinstalled
    assert plugin_commands()[("study", "data-selection")][0] == "tasks.data_selection.cli_study"
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["mmsft.plugins"]["data_selection"] == "tasks.data_selection.plugin"


def test_study_smoke(tmp_path):
    results = run_study(StudyConfig(out=tmp_path / "s", steps=2, base_steps=2, seeds=[0],
                                    methods=["random", "q_tuning"]))
    assert set(results["methods"]) == {"random", "q_tuning"}
    assert results["methods"]["q_tuning"]["kept"] + results["methods"]["q_tuning"]["dropped"] == 2 * 32
    assert results["methods"]["random"]["tokens"] > 0
    assert results["methods"]["q_tuning"]["verdict"] in ("holds", "does not hold", "inconclusive")
    table = (tmp_path / "s" / "results.md").read_text()
    assert "| q_tuning |" in table and table == markdown(results)
    assert set(METHODS) == {"random", "s3ft", "grape", "uds", "q_tuning", "stat"}


def test_cli_rejects_unknown_method(capsys):
    import argparse

    from tasks.data_selection import cli_study

    parser = argparse.ArgumentParser()
    cli_study.add_arguments(parser)
    assert cli_study.run(parser.parse_args(["--methods", "random,lima"])) == 2
    assert "lima" in capsys.readouterr().err
