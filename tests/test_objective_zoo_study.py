"""The objective comparison study: its task splits, metrics (ECE, distinct-n, EAD), reward, claim verdicts and a tiny
end-to-end run of ``mmsft study sft-objectives`` through the CLI."""

from __future__ import annotations

import json
import math

import pytest

import tasks.objective_study.plugin  # noqa: F401  (registers study_exact; the entry point needs a reinstall)
from tasks.objective_study.metrics import distinct_n, ead, ece
from tasks.objective_study.study import _verdict
from tasks.objective_study.world import OOD_TEMPLATE, TRAIN_TEMPLATES, build, held_out


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_world_splits(tmp_path):
    paths = build(tmp_path, seed=0)
    train, ident, ood, probe = (_rows(paths[k]) for k in ("train", "id", "ood", "probe"))
    hidden = held_out(0)
    assert len(train) == 8 * 14 * 2 and len(ident) == 8 * 14 and len(ood) == 8 * 16 and len(probe) == 34
    questions = {r["messages"][0]["content"] for r in train}
    ood_stem = OOD_TEMPLATE.split("{")[0]
    assert not any(q.startswith(ood_stem) for q in questions)  # the OOD template never appears in training
    assert all(any(q.startswith(t.split("{")[0]) for t in TRAIN_TEMPLATES) for q in questions)
    for r in train:  # held-out combinations never appear in training
        _, shape, size, position, _ = r["id"].split("-")
        assert (size, position) not in hidden[shape]
    assert sum(r["meta"]["held_out_combo"] for r in ood) == 16
    assert len({r["id"] for r in _rows(paths["base"])}) == len(_rows(paths["base"]))


def test_ece_distinct_and_ead_golden():
    # bin (0.8, 0.9]: 2 items, acc 1/2, conf 0.85; bin (0.2, 0.3]: 1 item, acc 1, conf 0.25
    assert ece([True, False, True], [0.85, 0.85, 0.25]) == pytest.approx(2 / 3 * 0.35 + 1 / 3 * 0.75)
    completions = [[1, 2, 3], [1, 2, 4]]
    assert distinct_n(completions, 1) == pytest.approx(4 / 6)
    assert distinct_n(completions, 2) == pytest.approx(3 / 4)
    v = 10
    expected = ((4 / (v * (1 - (9 / 10) ** 6))) + (3 / (v * (1 - (9 / 10) ** 4)))) / 2
    assert ead(completions, v) == pytest.approx(expected)


def test_study_reward_is_first_word_exact_match():
    from types import SimpleNamespace

    from mmsft.rewards import get_reward

    fn = get_reward("study_exact")
    sample = SimpleNamespace(id="s", answer="red")
    assert fn([sample] * 4, ["Red.", " red circle", "blue", ""]) == [1.0, 1.0, 0.0, 0.0]


def test_verdicts_use_one_standard_error():
    sft = {"id": 0.5, "ood": 0.5, "probe": 0.8, "id_n": 100, "ood_n": 100, "probe_n": 100, "ead": 0.5}
    se = math.sqrt(2 * 0.25 / 100)
    better = {**sft, "ood": 0.5 + 2 * se}
    assert _verdict("dft", better, sft)[0] == "holds"
    assert _verdict("dft", {**sft, "ood": 0.5 + 0.5 * se}, sft)[0] == "inconclusive"
    assert _verdict("dft", {**sft, "ood": 0.3}, sft)[0] == "does not hold"
    # GRPO: less forgetting = higher probe accuracy than SFT; less diversity = lower EAD
    row = {**sft, "probe": 0.95, "ood": 0.7, "ead": 0.3}
    verdict, notes = _verdict("grpo", row, sft)
    assert verdict == "holds" and len(notes) == 3


def test_study_cli_end_to_end(tmp_path):
    from mmsft.cli import main
    from mmsft.plugins import import_plugin

    import_plugin("tasks.objective_study.plugin")
    out = tmp_path / "study"
    assert main(["study", "sft-objectives", "--out", str(out), "--steps", "2", "--base-steps", "2",
                 "--methods", "sft,dft,grpo,lfu", "--seeds", "0"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"sft", "dft", "grpo", "lfu"}
    for method in ("sft", "dft", "grpo", "lfu"):
        row = results["methods"][method]
        assert 0 <= row["id"] <= 1 and 0 <= row["ood"] <= 1 and row["step_s"] > 0
    assert results["methods"]["dft"]["verdict"] in ("holds", "inconclusive", "does not hold")
    table = (out / "results.md").read_text()
    assert "| dft |" in table and "| lfu |" in table
    assert main(["study", "sft-objectives", "--out", str(out), "--methods", "nope"]) == 2
