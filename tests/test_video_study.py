"""``mmsft study videorft`` (tasks/video/study.py): every arm runs end to end on a tiny setting; table and plot."""

from __future__ import annotations

import json

import pytest

from tasks.video.study import ARMS, StudySettings, run_study, table


@pytest.mark.slow
def test_study_runs_every_arm(tmp_path):
    settings = StudySettings(out=tmp_path / "study", num_train=14, num_eval=7, sft_steps=2, rl_steps=1,
                             prompts_per_step=2, group_size=2, max_new_tokens=8)
    results = run_study(settings, log=lambda _: None)
    assert list(results["arms"]) == ["zero-shot", "cot-sft"] + [name for name, _, _ in ARMS]
    for metrics in results["arms"].values():
        assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n"] == 7.0
        assert "accuracy/type/multiple choice" in metrics
    saved = json.loads((tmp_path / "study" / "results.json").read_text())
    assert saved["arms"] == results["arms"] and saved["wall_s"]["total"] > 0
    record = json.loads((tmp_path / "study" / "runs" / "sft-grpo+semantic+tgrpo" / "metrics.jsonl").read_text()
                        .splitlines()[0])
    assert "tgrpo/shuffled_accuracy" in record and "reward/videorft_semantic" in record
    plain = json.loads((tmp_path / "study" / "runs" / "sft-grpo" / "metrics.jsonl").read_text().splitlines()[0])
    assert "reward/videorft_semantic" not in plain and "tgrpo/shuffled_accuracy" not in plain
    assert (tmp_path / "study" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "study" / "results.md").read_text().startswith("| arm | accuracy | format |")


def test_table_lists_arms_types_and_wall_times():
    results = {"arms": {"zero-shot": {"accuracy": 0.1, "format": 0.0, "accuracy/type/OCR": 0.5},
                        "cot-sft": {"accuracy": 0.25, "format": 1.0, "accuracy/type/OCR": 0.75,
                                    "accuracy/type/numerical": 0.0}},
               "wall_s": {"zero-shot": 1.5, "cot-sft": 20.0, "total": 30.0}}
    text = table(results)
    assert "| arm | accuracy | format | OCR | numerical | wall s |" in text
    assert "| zero-shot | 0.100 | 0.000 | 0.500 | 0.000 | 1.5 |" in text
    assert "| cot-sft | 0.250 | 1.000 | 0.750 | 0.000 | 20.0 |" in text and "total wall time 30.0 s" in text


def test_cli_has_the_study_command():
    from mmsft.cli import build_parser
    from mmsft.plugins import import_plugin

    import_plugin("tasks.video.plugin")  # what the `video` entry point does in an installed checkout
    args = build_parser().parse_args(["study", "videorft", "--quick", "--out", "x", "--rl-steps", "3"])
    assert args.quick and args.out == "x" and args.rl_steps == 3
    assert args._run.__module__ == "tasks.video.cli_study"
