"""The CLS-RL study command end to end at toy size: four methods evaluated, table, JSON and curves written."""

from __future__ import annotations

import json

import pytest

from mmsft.cli import main


@pytest.mark.slow
def test_study_runs_end_to_end(tmp_path):
    pytest.importorskip("matplotlib")
    from tasks.image_classification.base_model import THINKING_PATH, is_complete

    if not is_complete(THINKING_PATH):
        pytest.skip("shipped thinking base model missing")
    out = tmp_path / "study"
    code = main(["study", "cls-rl", "--out", str(out), "--sft-steps", "2", "--rl-steps", "2", "--k-shot", "1",
                 "--test-per-class", "1", "--prompts-per-step", "2", "--group-size", "2", "--think-tokens", "8",
                 "--nothink-tokens", "4"])
    assert code == 0
    summary = json.loads((out / "study_results.json").read_text())
    assert set(summary["results"]) == {"zero-shot", "zero-shot (thinking)", "SFT", "CLS-RL",
                                          "No-Thinking-CLS-RL"}
    for row in summary["results"].values():
        assert 0.0 <= row["base"] <= 1.0 and 0.0 <= row["new"] <= 1.0 and 0.0 <= row["hm"] <= 1.0
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "runs" / "cls-rl" / "rollouts").is_dir()
