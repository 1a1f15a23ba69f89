"""``mmsft continual`` end to end on the tiny text model: a 2-task × 2-method × 1-seed run writes the matrices,
metrics, tables and plots; a run killed (SIGKILL) after its first stage resumes there and gives the same results;
``mmsft continual report`` re-renders from results.json; every bad entry fails before anything trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mmsft.cli import main
from mmsft.config import ConfigError
from mmsft.continual import load_experiment, plan_runs, run_experiment

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("red", "blue")


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    from mmsft.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("continual-assets")
    out = {"model": build_tiny("text", root / "text", seed=0)}
    for word in WORDS:
        rows = [{"id": f"{word}{i}", "messages": [{"role": "user", "content": f"Question {i}: which colour?"},
                                                  {"role": "assistant", "content": word}], "answer": word}
                for i in range(8)]
        out[word] = root / f"{word}.jsonl"
        out[word].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def experiment(assets: dict[str, Path], out: Path, methods: list | None = None, steps: int = 8) -> dict:
    return {
        "output_dir": str(out),
        "plugins": ["tasks.image_classification.rewards"],
        "base_model": str(assets["model"]),
        "seeds": [0],
        "defaults": {"train": {"torch_threads": 1, "progress": False, "tensorboard": False, "micro_batch_size": 4,
                               "max_steps": steps, "save_steps": 2},
                     "optim": {"lr": 1e-2, "scheduler": "constant"},
                     "rl": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 4, "log_completions": 0}},
        "tasks": [{"name": w, "data": str(assets[w]), "reward": "cls_accuracy",
                   "eval": {"evaluator": "generation_accuracy", "path": str(assets[w]), "max_new_tokens": 4},
                   "rft": {"train": {"max_steps": 2, "micro_batch_size": 16}}} for w in WORDS],
        "general": [{"name": "probe", "evaluator": "generation_accuracy", "path": str(assets["red"]),
                     "max_samples": 4, "max_new_tokens": 4}],
        "methods": methods or ["sft", {"name": "grpo", "method": "rft"}],
    }


@pytest.fixture(scope="module")
def straight(assets, tmp_path_factory):
    return run_experiment(experiment(assets, tmp_path_factory.mktemp("straight") / "run"), quiet=True)


def test_two_tasks_two_methods(straight):
    out, results = straight.output_dir, straight.results
    assert straight.trained == ["sft/seed0/red", "sft/seed0/blue", "grpo/seed0/red", "grpo/seed0/blue"]
    sft = next(r for r in results["runs"] if r["method"] == "sft")
    assert sft["rows"] == ["start", "red", "blue"]
    # SFT learns each colour and overwrites the previous one: full forgetting, BWT = -1
    assert sft["A"] == [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]] and sft["general"] == {"probe": [0.0, 1.0, 0.0]}
    summary = results["summary"]
    assert summary["sft"]["bwt"] == {"mean": -1.0, "std": 0.0, "n": 1}
    assert summary["sft"]["acc"]["mean"] == 0.5 and summary["sft"]["fwt"]["mean"] == 0.0
    grpo = summary["grpo"]
    assert grpo["costs"]["rl_rollouts"]["mean"] == 2 * 2 * 4 * 4  # 2 stages × 2 steps × 4 prompts × 4 samples
    assert summary["sft"]["costs"]["rl_rollouts"]["mean"] == 0 and summary["sft"]["costs"]["train_cpu_s"]["mean"] > 0
    log = sft["log"]
    assert log["red"]["train"]["steps"] == 8 and log["red"]["index"] == 1
    text = (out / "results.md").read_text()
    assert "| sft | 0.500 | -1.000 | 0.000 | 1.000 | 1.000 | 0.000 |" in text
    for png in ("heatmaps.png", "curves.png"):
        assert (out / png).stat().st_size > 10_000
    # checkpoints of finished stages are pruned; final models stay (any cell can be recomputed)
    stage = out / "runs" / "sft" / "seed0" / "stages" / "1-red"
    assert (stage / "final" / "model.safetensors").is_file() and not (stage / "checkpoints").exists()
    assert (out / "experiment.yaml").is_file() and (out / "start" / "pipeline_state.json").is_file()


_DRIVER = """
import sys, time
from mmsft.train.trainer import Trainer
step = Trainer._step
def slow_step(self, index):  # slow enough to be killed between checkpoints
    time.sleep(0.3)
    return step(self, index)
Trainer._step = slow_step
from mmsft.continual import run_experiment
run_experiment(sys.argv[1], quiet=True)
"""


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")
            if p.is_file()}


def test_killed_after_the_first_stage_resumes_with_the_same_results(assets, straight, tmp_path):
    out = tmp_path / "run"
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment(assets, out)))
    (tmp_path / "driver.py").write_text(_DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = out / "runs" / "sft" / "seed0"
    checkpoint = run / "stages" / "2-blue" / "checkpoints" / "step-000002" / "trainer_state.json"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            state = run / "pipeline_state.json"
            if state.is_file() and "red" in json.loads(state.read_text())["stages"] and checkpoint.is_file():
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (run / "stages" / "2-blue" / "final").exists(), "killed too late: stage 2 had finished"
    stage1 = _snapshot(run / "stages" / "1-red")
    resumed = run_experiment(path, quiet=True)
    assert resumed.trained == ["sft/seed0/blue", "grpo/seed0/red", "grpo/seed0/blue"]
    assert _snapshot(run / "stages" / "1-red") == stage1  # the finished stage was not touched
    for a, b in zip(straight.results["runs"], resumed.results["runs"]):
        assert (a["method"], a["A"], a["general"], a["cells"]) == (b["method"], b["A"], b["general"], b["cells"])
    assert resumed.results["runs"][0]["log"]["blue"]["train"]["resumed_from_checkpoint"] is True
    # a third call trains nothing and reports the same
    again = run_experiment(path, quiet=True)
    assert again.trained == [] and [r["A"] for r in again.results["runs"]] == [r["A"] for r in resumed.results["runs"]]


def test_parallel_jobs_give_the_same_results(assets, straight, tmp_path):
    """jobs=2 trains the two (method, seed) runs in two spawned worker processes; the matrices, probes and cells
    equal the sequential run's, every stage is reported as trained, and each worker's output is in its run folder."""
    out = tmp_path / "run"
    parallel = run_experiment(experiment(assets, out), quiet=True, jobs=2)
    assert sorted(parallel.trained) == sorted(straight.trained)
    for a, b in zip(straight.results["runs"], parallel.results["runs"]):
        assert (a["method"], a["A"], a["general"], a["cells"]) == (b["method"], b["A"], b["general"], b["cells"])
    assert (out / "runs" / "grpo" / "seed0" / "worker.log").is_file()
    assert run_experiment(experiment(assets, out), quiet=True, jobs=2).trained == []  # resumed: nothing to train
    with pytest.raises(ConfigError, match="jobs=0"):
        run_experiment(experiment(assets, out), quiet=True, jobs=0)


def test_report_rerenders_from_results(straight, capsys):
    out = straight.output_dir
    markdown = (out / "results.md").read_text()
    for name in ("results.md", "heatmaps.png", "curves.png"):
        (out / name).unlink()
    assert main(["continual", "report", str(out)]) == 0
    assert (out / "results.md").read_text() == markdown
    assert (out / "heatmaps.png").is_file() and (out / "curves.png").is_file()
    assert main(["continual", "report", str(out / "nowhere")]) == 2
    assert "has no results.json" in capsys.readouterr().err


def _error(assets: dict[str, Path], tmp_path: Path, edit) -> str:
    doc = experiment(assets, tmp_path / "never")
    edit(doc)
    with pytest.raises(ConfigError) as info:
        plan_runs(load_experiment(doc))
    assert not (tmp_path / "never").exists()
    return str(info.value)


def test_bad_entries_fail_before_training(assets, tmp_path):
    def task(i: int) -> dict:
        return {"name": "t", "data": "missing.jsonl", "reward": "cls_accuracy",
                "eval": {"evaluator": "generation_accuracy", "path": str(assets["red"])}}

    msg = _error(assets, tmp_path, lambda d: d["methods"].append("sfft"))
    assert "methods[2]" in msg and "'sft'" in msg
    msg = _error(assets, tmp_path, lambda d: d["tasks"].append(task(0)))
    assert "task 't'" in msg and "missing.jsonl does not exist" in msg
    msg = _error(assets, tmp_path, lambda d: d["tasks"][0]["eval"].update(evaluator="no_such_eval"))
    assert "task 'red': eval[0]" in msg and "no_such_eval" in msg
    msg = _error(assets, tmp_path, lambda d: d["tasks"][1].update(reward="cls_acuracy"))
    assert "task 'blue': key 'reward'" in msg and "cls_accuracy" in msg
    msg = _error(assets, tmp_path, lambda d: d["tasks"][1].update(evall={}))
    assert "tasks[1]" in msg and "'eval'" in msg
    msg = _error(assets, tmp_path, lambda d: d["tasks"][0].update(reward=""))
    assert "method 'grpo'" in msg and "task 'red' needs training data ('data') and a verifiable reward" in msg
    msg = _error(assets, tmp_path, lambda d: d["methods"].append({"method": "past", "source": "green"}))
    assert "method 'past'" in msg and "'green' is not in the sequence" in msg
    msg = _error(assets, tmp_path, lambda d: d["methods"].append({"method": "rif_rft", "kk": 4}))
    assert "method 'rif_rft'" in msg and "'k'" in msg
    msg = _error(assets, tmp_path, lambda d: d["tasks"][0]["eval"].update(max_new_token=3))
    assert "max_new_tokens" in msg
    msg = _error(assets, tmp_path, lambda d: d["general"][0].update(path=str(tmp_path / "gone.jsonl")))
    assert "general[0]" in msg and "gone.jsonl does not exist" in msg
    msg = _error(assets, tmp_path, lambda d: d.update(seeds=[0, 0]))
    assert "seeds" in msg
    msg = _error(assets, tmp_path, lambda d: d["tasks"][0].update(recipe={"optim": {"lrr": 1}}))
    assert "'red'" in msg and "lr" in msg
    assert main(["continual", str(tmp_path / "no.yaml")]) == 2


def test_an_eval_set_that_cannot_verify_fails_before_training(assets, tmp_path):
    unanswered = tmp_path / "unanswered.jsonl"
    unanswered.write_text(json.dumps({"id": "a", "messages": [{"role": "user", "content": "hi"}], "answer": "x"})
                          + "\n" + json.dumps({"id": "b", "messages": [{"role": "user", "content": "hi"}]}) + "\n")
    msg = _error(assets, tmp_path, lambda d: d["general"].append(
        {"name": "bad", "evaluator": "generation_accuracy", "path": str(unanswered)}))
    assert "general[1]" in msg and "unanswered.jsonl:2 has no 'answer'" in msg
    msg = _error(assets, tmp_path, lambda d: d["general"].append(
        {"name": "bad", "evaluator": "reward_mean", "path": str(assets["red"])}))
    assert "reward_mean needs 'rewards'" in msg
    msg = _error(assets, tmp_path, lambda d: d["general"].append(
        {"name": "bad", "evaluator": "reward_mean", "path": str(assets["red"]), "rewards": "no_such_reward"}))
    assert "no_such_reward" in msg
