"""RedOne 2.0 (arXiv 2511.07070) as a pipeline recipe: the golden failure-selection on a fixed rollout table, and
tasks/redone/redone.yaml end to end at toy size (explore GRPO → targeted SFT → refine GRPO)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from mmsft.data.schema import DataError
from mmsft.data.selection import RolloutFilter
from mmsft.data.selectors import SELECTORS, SelectionEnv
from mmsft.data.selectors.redone import RedOneArgs, redone_targeted, targeted_decisions

REPO = Path(__file__).resolve().parents[1]
TABLE = {"a": [1.0, 1.0, 0.0, 0.0], "b": [0.0, 0.0, 0.0, 0.0], "c": None, "d": [0.0, 0.5, 1.0, 0.0],
         "e": [0.2, 0.0, 0.9, 0.0]}
GENERAL = ["g1", "g2", "g3", "g4", "g5"]
IDS = ["a", "g1", "b", "c", "g2", "d", "g3", "e", "g4", "g5"]


def _reasons(decisions):
    return {IDS[d.index]: d.reason for d in decisions}


def test_golden_failure_selection_on_fixed_table():
    rule = RolloutFilter(k=4, min_successes=0, max_successes=1, success_threshold=1.0)
    decisions = targeted_decisions(TABLE, GENERAL, IDS, rule, general_fraction=0.25, seed=0)
    assert [d.index for d in decisions] == list(range(len(IDS)))
    reasons = _reasons(decisions)
    # successes at threshold 1.0: a 2, b 0, d 1, e 0 (0.9 < 1); c overlong.
    assert {k: reasons[k] for k in "abcde"} == {"a": "dropped_solved", "b": "kept_failed", "c": "dropped_overlong",
                                                "d": "kept_failed", "e": "kept_failed"}
    assert [decisions[IDS.index(k)].scores["successes"] for k in "abde"] == [2.0, 0.0, 1.0, 0.0]
    assert decisions[IDS.index("d")].scores["mean_reward"] == pytest.approx(0.375)
    # 3 failed, f = 0.25: g = round(0.25 · 3 / 0.75) = 1 general row, drawn with the seed.
    general = [reasons[g] for g in GENERAL]
    assert general.count("kept_general") == 1 and general.count("dropped_general") == 4
    again = targeted_decisions(TABLE, GENERAL, IDS, rule, general_fraction=0.25, seed=0)
    assert _reasons(again) == reasons
    # Stricter threshold of "failed": only the unsolved ones; no general share.
    strict = _reasons(targeted_decisions(TABLE, GENERAL, IDS, RolloutFilter(k=4, min_successes=0, max_successes=0),
                                         general_fraction=0.0, seed=0))
    assert sorted(k for k, r in strict.items() if r == "kept_failed") == ["b", "e"]
    assert [strict[g] for g in GENERAL] == ["dropped_general"] * 5
    # The general share is capped by the general rows available: round(0.9 · 3 / 0.1) = 27 > 5.
    many = _reasons(targeted_decisions(TABLE, GENERAL, IDS, rule, general_fraction=0.9, seed=3))
    assert [many[g] for g in GENERAL] == ["kept_general"] * 5


def test_targeting_rule_and_args_are_checked():
    with pytest.raises(ValueError, match="min_successes must be 0"):
        targeted_decisions(TABLE, GENERAL, IDS, RolloutFilter(k=4, min_successes=1, max_successes=2), 0.1, 0)
    with pytest.raises(DataError, match="rewards"):
        redone_targeted([], RedOneArgs(), SelectionEnv())
    with pytest.raises(DataError, match="below k=4"):
        redone_targeted([], RedOneArgs(rewards="x", k=4, max_successes=4), SelectionEnv())
    assert SELECTORS.get("redone_targeted").meta["kind"] == "offline"


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def test_redone_recipe_end_to_end(tmp_path, monkeypatch):
    from mmsft.pipeline import run_pipeline
    from tasks.redone.world import build

    monkeypatch.chdir(tmp_path)
    build(tmp_path / "data" / "redone")
    pipeline = yaml.safe_load((REPO / "tasks" / "redone" / "redone.yaml").read_text())
    base = REPO / "assets" / "thinking_base"
    pipeline["defaults"]["model"]["name_or_path"] = str(base)
    for entry in pipeline["evaluators"]:
        entry["max_samples"] = 4
    result = run_pipeline(pipeline, ["output_dir=run", "train.max_steps=2", "train.save_steps=0"])
    assert result.trained == ["explore", "target", "refine"]

    stages = tmp_path / "run" / "stages"
    report = json.loads((stages / "2-target" / "selection" / "report.json").read_text())
    c = report["counts"]
    args = pipeline["stages"][1]["recipe"]["data"]["selector_args"]
    n_task, n_general = 72, 17  # 24 facts × 3 phrasings; 17 probe words
    assert report["samples"] == n_task + n_general
    assert c["select/kept"] + c["select/dropped"] == n_task + n_general
    assert c["select/kept_failed"] + c.get("select/dropped_solved", 0) + c.get("select/dropped_overlong", 0) == n_task
    assert c.get("select/kept_general", 0) + c.get("select/dropped_general", 0) == n_general
    assert c["select/kept"] == c["select/kept_failed"] + c.get("select/kept_general", 0)
    f = args["general_fraction"]
    assert c.get("select/kept_general", 0) == min(n_general, round(f * c["select/kept_failed"] / (1 - f)))
    rows = [json.loads(line) for line in (stages / "2-target" / "selection" / "decisions.jsonl").read_text().splitlines()]
    for row in rows:  # kept task rows are exactly those with at most max_successes successful rollouts
        if row["reason"] in ("kept_failed", "dropped_solved"):
            assert (row["scores"]["successes"] <= args["max_successes"]) == row["keep"]
    assert sum(r["keep"] for r in rows) == report["trained_rows"] == c["select/kept"]
    metrics = [json.loads(line) for line in (stages / "2-target" / "metrics.jsonl").read_text().splitlines()]
    assert any(m.get("select/kept_failed") == c["select/kept_failed"] for m in metrics)

    previous = _weights(base)
    for stage in ("1-explore", "2-target", "3-refine"):
        current = _weights(stages / stage / "final")
        assert current.keys() == previous.keys()
        assert any(not (current[k] == previous[k]).all() for k in current), f"{stage} changed no parameter"
        previous = current
