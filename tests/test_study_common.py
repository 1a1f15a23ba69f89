"""Shared study helpers (tasks/puzzles/study_common.py): the wall/CPU clock counts worker CPU time, and
``train_all`` trains independent runs in this process or side by side in spawned workers with the same result
folders and per-run times."""

from __future__ import annotations

import json
import time

import pytest

from tasks.puzzles.study_common import Clock, default_workers, sft_config, train_all


def test_clock_counts_child_cpu():
    clock = Clock()
    clock.add("train/a", 2.0, 1.5, child=True)
    clock.add("train/a", 1.0, 0.5, child=True)
    clock.add("eval", 1.0, 0.25)  # this process's own time is measured by process_time, not added
    assert clock.phases["train/a"] == {"wall_s": 3.0, "cpu_s": 2.0}
    own = time.process_time()
    total = clock.total()["cpu_s"]
    assert 2.0 <= total <= 2.0 + own + 0.2
    assert 1 <= default_workers() <= 2


@pytest.mark.parametrize("workers", [1, 2])
def test_train_all_in_process_and_in_workers(tmp_path, tiny_models, text_dataset, workers):
    jobs = {name: sft_config(tiny_models["text"], text_dataset, tmp_path / name, 1, 2, 128, seed=seed)
            for name, seed in (("a", 0), ("b", 1))}
    clock = Clock()
    out = train_all(jobs, clock, workers, log=lambda *_: None)
    assert set(out) == {"a", "b"}
    for name, folder in out.items():
        assert (folder / "config.json").is_file() and folder.is_relative_to(tmp_path / name)
        assert clock.phases[f"train/{name}"]["wall_s"] > 0
        steps = [json.loads(x)["step"] for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        assert steps[-1] == 1
    assert (clock.child_cpu > 0) == (workers > 1)
