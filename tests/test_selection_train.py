"""Selectors inside training: YAML keys, counts in metrics.jsonl, the per-run selection report, bit-exact resume of
an online selector (the UDS memory is checkpointed), offline decisions reused on resume, config errors."""

from __future__ import annotations

import json

import pytest
import torch

from mmsft.config import ConfigError, load_config
from mmsft.train.trainer import Trainer
from tests.test_trainer import _config, _weights

UDS_ARGS = "data.selector_args={pool: 2, r1: 4, r2: 4, t_max: 16, alpha: 0.01}"


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_q_tuning_counts_and_report(tiny_models, text_dataset, tmp_path):
    run = tmp_path / "q"
    cfg = _config(tiny_models["text"], text_dataset, run, "train.max_steps=2", "data.selector=q_tuning",
                  "data.selector_args={sample_ratio: 0.5, pool: 4}")
    Trainer(cfg).train()
    last = _metrics(run)[-1]
    assert last["select/kept"] + last["select/dropped"] == 2 * 2 * 4  # 2 steps × pool of 4 × 2 samples per step
    assert last["select/kept"] >= 2
    reasons = {k: v for k, v in last.items() if k.startswith("select/") and k.split("/")[1].startswith(("kept_",
                                                                                                    "dropped_"))}
    assert sum(reasons.values()) == 16
    report = json.loads((run / "selection" / "report.json").read_text())
    assert report["selector"] == "q_tuning" and report["steps"] == 2
    steps = [json.loads(line) for line in (run / "selection" / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [0, 1] and all(len(s["kept"]) + len(s["dropped"]) == 8 for s in steps)


def test_uds_resume_is_bit_identical(tiny_models, text_dataset, tmp_path):
    common = ["data.selector=uds", UDS_ARGS, "train.max_steps=4"]
    Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "straight", *common)).train()
    split = _config(tiny_models["text"], text_dataset, tmp_path / "split", "train.save_steps=2", *common)

    class _Crash(Trainer):
        def _step(self, step):
            if step == 2:
                raise KeyboardInterrupt
            return super()._step(step)

    with pytest.raises(KeyboardInterrupt):
        _Crash(split).train()
    Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "split", "train.resume=auto", *common)).train()
    a, b = _weights(tmp_path / "straight" / "final"), _weights(tmp_path / "split" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (tmp_path / "split" / "selection" / "steps.jsonl").read_text().splitlines()]
    straight = [json.loads(line) for line in
                (tmp_path / "straight" / "selection" / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3] and [r["kept"] for r in rows] == [r["kept"] for r in straight]
    assert _metrics(tmp_path / "split")[-1]["select/kept"] == 4 * 2


def test_offline_grape_report_and_reuse(tiny_models, tmp_path, monkeypatch):
    rows = [{"id": f"g{i}", "messages": [{"role": "user", "content": f"Name colour {i}."},
                                         {"role": "assistant", "content": "red"}],
             "meta": {"candidates": ["blue", "green green green"]}} for i in range(4)]
    data = tmp_path / "grape.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "g"
    Trainer(_config(tiny_models["text"], data, run, "train.max_steps=1", "data.selector=grape")).train()
    decisions = [json.loads(line) for line in (run / "selection" / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == 4 and all(d["reason"] == "kept_most_likely_candidate" for d in decisions)
    assert all(d["target"] in ("red", "blue", "green green green") for d in decisions)
    report = json.loads((run / "selection" / "report.json").read_text())
    assert report["counts"]["select/kept"] == 4 and report["counts"]["select/kept_most_likely_candidate"] == 4
    assert _metrics(run)[-1]["select/kept"] == 4

    from mmsft.data.selectors import grape

    def boom(*a, **k):
        raise AssertionError("the selection must be reused, not recomputed")

    monkeypatch.setattr(grape, "mean_logps", boom)
    Trainer(_config(tiny_models["text"], data, run, "train.max_steps=2", "data.selector=grape",
                    "train.resume=auto")).train()


def test_selector_config_errors(tiny_models, text_dataset, tmp_path):
    with pytest.raises(ConfigError, match="did you mean|Did you mean"):
        load_config(None, ["data.selector=q_tunning"])
    with pytest.raises(ConfigError, match="data.selector_args.sample_rate"):
        load_config(None, ["data.selector=q_tuning", "data.selector_args={sample_rate: 0.5}"])
    with pytest.raises(ConfigError, match="sample_ratio"):
        load_config(None, ["data.selector=q_tuning", "data.selector_args={sample_ratio: 0}"])
