"""Experiment trackers (``train.report_to``): tensorboard and an mlflow file store receive exactly the scalars of
``metrics.jsonl`` for a 3-step run (2 steps, then resumed for the third: one tracker run continues), plus the config;
an RL run's completions reach mlflow as a table; wandb offline (when installed) and trackio (through a stand-in
client module) get the same scalars; an unknown tracker or a missing client fails at config load naming the extra;
a tracker failing mid-run is switched off with a warning while metrics.jsonl stays complete."""

from __future__ import annotations

import importlib.machinery
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from mmsft.config import ConfigError, load_config
from mmsft.train.logging import MetricsLogger, parse_report_to
from mmsft.train.trainer import Trainer
from tests.test_report import read_metrics, rl_config, sft_config


def _expected(run: Path) -> dict[str, dict[int, float]]:
    """metrics.jsonl as {key: {step: value}} (finite numbers; the last record of a step wins)."""
    out: dict[str, dict[int, float]] = {}
    for record in read_metrics(run):
        for key, value in record.items():
            if key not in ("step", "time") and isinstance(value, (int, float)) and math.isfinite(value):
                out.setdefault(key, {})[record["step"]] = float(value)
    return out


def _tensorboard(run: Path) -> tuple[dict[str, dict[int, float]], list[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    return scalars, events.Tags()["tensors"]


def _mlflow_run(run: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("mmsft")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, f"expected one mlflow run, found {len(runs)}"
    return client, runs[0]


def test_tensorboard_and_mlflow_receive_the_metrics_jsonl_scalars(tiny_models, text_dataset, tmp_path):
    pytest.importorskip("mlflow")
    run = tmp_path / "run"
    trackers = ["train.report_to=tensorboard,mlflow", f"data.eval_path={text_dataset}", "eval.max_samples=2",
                "eval.max_new_tokens=2", "optim.scheduler=constant"]
    Trainer(sft_config(tiny_models["text"], text_dataset, run, "train.max_steps=2", *trackers)).train()
    ids = json.loads((run / "trackers.json").read_text())
    Trainer(sft_config(tiny_models["text"], text_dataset, run, "train.max_steps=3", "train.resume=auto",
                       *trackers)).train()
    assert json.loads((run / "trackers.json").read_text()) == ids  # the resumed run continued the same mlflow run
    expected = _expected(run)
    assert sorted({s for v in expected.values() for s in v}) == [1, 2, 3] and "eval/accuracy" in expected

    scalars, tensors = _tensorboard(run)
    assert set(scalars) == set(expected)
    for key, by_step in expected.items():  # tensorboard keeps float32
        assert scalars[key] == {s: float(np.float32(v)) for s, v in by_step.items()}, key
    assert any(t.startswith("config") for t in tensors)  # the resolved config as text

    client, mlrun = _mlflow_run(run)
    assert mlrun.info.run_id == ids["mlflow"]
    assert set(mlrun.data.metrics) == set(expected)
    for key, by_step in expected.items():
        history = client.get_metric_history(mlrun.info.run_id, key)
        assert {m.step: m.value for m in history} == by_step, key
        assert len(history) == len(by_step)  # each step exactly once, across the resume
    assert mlrun.data.params["optim.lr"] == "0.01" and mlrun.data.params["train.report_to"] == "tensorboard,mlflow"
    config_text = Path(client.download_artifacts(mlrun.info.run_id, "config.yaml", str(tmp_path))).read_text()
    assert f"output_dir: {run}" in config_text


def test_rl_completions_reach_mlflow_as_a_table(tiny_models, text_dataset, tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("pandas")  # mlflow.log_table needs it
    run = tmp_path / "run"
    Trainer(rl_config(tiny_models["text"], text_dataset, run, "train.report_to=mlflow")).train()
    assert not (run / "tensorboard").exists()
    client, mlrun = _mlflow_run(run)
    assert set(mlrun.data.metrics) == set(_expected(run)) and "reward/total" in mlrun.data.metrics
    files = sorted((run / "rollouts").glob("*.jsonl"))
    table = Path(client.download_artifacts(mlrun.info.run_id, f"rollouts/{files[0].stem}.json", str(tmp_path)))
    logged = json.loads(table.read_text())
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    completions = logged["data"][0][logged["columns"].index("completion")] if logged["data"] else None
    assert logged["columns"] == list(rows[0]) and completions == rows[0]["completion"]


def _wandb_records(path: Path) -> list[bytes]:
    """Records of a wandb transaction log (a LevelDB-style log: 7-byte header, 32 KiB blocks, chunks with a 7-byte
    header of checksum, length and type full/first/middle/last)."""
    data, pos, out, pending, block = path.read_bytes(), 7, [], b"", 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
    return out


def test_wandb_offline_receives_the_scalars(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = MetricsLogger(tmp_path, 3, progress=False, report_to="wandb", config={"optim": {"lr": 0.5}})
    sent = {1: {"train/loss": 2.0, "reward/total": 0.25}, 2: {"train/loss": 1.5, "reward/total": 0.5}}
    for step, metrics in sent.items():
        logger.log(step, metrics)
    logger.close()
    [log] = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    history: dict[int, dict[str, float]] = {}
    config_seen = False
    for raw in _wandb_records(log):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            history[int(items["_step"])] = {k: v for k, v in items.items() if not k.startswith("_")}
        elif record.WhichOneof("record_type") in ("config", "run"):
            config_seen = config_seen or "0.5" in str(record)
    assert history == sent and config_seen


def test_trackio_gets_the_scalars_through_accelerate(tmp_path, monkeypatch):
    """trackio's client is not installed here: a stand-in module records what accelerate's TrackioTracker sends."""
    calls: dict[str, object] = {"logs": []}

    class Run:
        def log(self, values, step=None):
            calls["logs"].append((step, dict(values)))

        def finish(self):
            calls["finished"] = True

    def init(project, **kwargs):
        calls["init"] = (project, kwargs)
        return Run()

    module = types.ModuleType("trackio")
    module.init = init
    module.__spec__ = importlib.machinery.ModuleSpec("trackio", None)
    monkeypatch.setitem(sys.modules, "trackio", module)
    logger = MetricsLogger(tmp_path, 2, progress=False, report_to="trackio", config={"seed": 3})
    logger.log(1, {"train/loss": 1.0, "bad": float("nan")})
    logger.close()
    assert calls["init"] == ("mmsft", {"name": tmp_path.name, "config": {"seed": 3}})
    assert calls["logs"] == [(1, {"train/loss": 1.0})] and calls["finished"]  # NaN stays in metrics.jsonl only


def test_bad_report_to_fails_at_config_load(monkeypatch):
    with pytest.raises(ConfigError, match=r"train.report_to.*unknown tracker 'tensorbord'.*Did you mean 'tensorboard'"):
        load_config(None, ["train.report_to=tensorbord"])
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    import mmsft.train.logging as logging

    monkeypatch.setattr(logging, "_client_installed", lambda module: module != "wandb")
    with pytest.raises(ConfigError, match=r"tracker 'wandb' needs the wandb client.*pip install 'mmsft\[wandb\]'"):
        load_config(None, ["train.report_to=tensorboard,wandb"])
    assert parse_report_to("none") == [] and parse_report_to(" TensorBoard , tensorboard ") == ["tensorboard"]
    assert load_config(None, ["train.report_to=none"]).train.report_to == "none"


def test_a_failing_tracker_is_switched_off_and_metrics_jsonl_stays_complete(tmp_path, capsys):
    logger = MetricsLogger(tmp_path, 3, progress=False, report_to="tensorboard")

    def broken(values, step):
        raise ConnectionError("server went away")

    logger.trackers[0].log = broken
    for step in (1, 2, 3):
        logger.log(step, {"train/loss": float(step)})
    logger.close()
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    err = capsys.readouterr().err
    assert err.count("tracker tensorboard failed to log metrics (ConnectionError: server went away)") == 1
