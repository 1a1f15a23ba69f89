"""Pipelines: a 2-stage run (SFT on "red", then on "blue") writes the stage × eval-set matrix; a run killed with
SIGKILL during stage 2 resumes there (stage 1 untouched, same matrix and weights as an uninterrupted run); a LoRA
stage hands a merged model on; the pipeline file is validated before anything trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mmsft.config import ConfigError
from mmsft.pipeline import PipelineStateError, load_pipeline, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("red", "blue")


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    from mmsft.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("pipeline-assets")
    out = {"model": build_tiny("text", root / "text", seed=0)}
    for word in WORDS:
        rows = [{"id": f"{word}{i}", "messages": [{"role": "user", "content": f"Question {i}: which colour?"},
                                                  {"role": "assistant", "content": word}], "answer": word}
                for i in range(8)]
        out[word] = root / f"{word}.jsonl"
        out[word].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _pipeline(assets: dict[str, Path], out: Path, steps: int = 8, save_steps: int = 0) -> dict:
    return {
        "output_dir": str(out),
        "defaults": {"model": {"name_or_path": str(assets["model"])},
                     "train": {"torch_threads": 1, "progress": False, "tensorboard": False, "micro_batch_size": 4,
                               "max_steps": steps, "save_steps": save_steps},
                     "optim": {"lr": 1e-2, "scheduler": "constant"}},
        "stages": [{"name": word, "recipe": {"data": {"train_path": str(assets[word])}}} for word in WORDS],
        "evaluators": [{"name": word, "evaluator": "generation_accuracy", "path": str(assets[word]),
                        "max_new_tokens": 4} for word in WORDS],
    }


@pytest.fixture(scope="module")
def straight(assets, tmp_path_factory):
    """The uninterrupted 2-stage run."""
    return run_pipeline(_pipeline(assets, tmp_path_factory.mktemp("straight") / "run", save_steps=2), quiet=True)


def test_two_stage_pipeline_writes_the_matrix(straight, assets):
    run = straight.run_dir
    # Each SFT stage teaches its colour and overwrites the previous one: forgetting shows up in the matrix.
    assert straight.matrix.table() == [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    assert straight.trained == ["red", "blue"] and straight.skipped == []
    matrix = json.loads((run / "matrix.json").read_text())
    assert matrix["stages"] == ["base", "red", "blue"] and matrix["eval_sets"] == ["red", "blue"]
    assert matrix["main_metric"] == {"red": "accuracy", "blue": "accuracy"}
    assert matrix["main"] == [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    assert matrix["metrics"]["blue"]["blue"] == {"accuracy": 1.0, "correct": 8.0, "total": 8.0}
    lines = (run / "matrix.md").read_text().splitlines()
    assert lines[0] == "| stage | red (accuracy) | blue (accuracy) |" and len(lines) == 5
    assert lines[3] == "| red | 1 | 0 |"
    from PIL import Image

    with Image.open(run / "matrix.png") as image:
        assert image.format == "PNG" and image.size[0] > 200 and image.size[1] > 100
    # stage 2 started from stage 1's final model and trained into its own folder
    stage2 = yaml.safe_load((run / "stages" / "2-blue" / "config.yaml").read_text())
    assert stage2["model"]["name_or_path"] == str(run / "stages" / "1-red" / "final")
    assert straight.final_model_dir == run / "stages" / "2-blue" / "final"
    state = json.loads((run / "pipeline_state.json").read_text())
    assert sorted(state["stages"]) == ["blue", "red"] and len(state["evals"]) == 6
    assert (run / "eval" / "1-red" / "blue" / "predictions.jsonl").is_file()


_DRIVER = """
import sys, time
from mmsft.train.trainer import Trainer
step = Trainer._step
def slow_step(self, index):  # slow enough to be killed between checkpoints
    time.sleep(0.25)
    return step(self, index)
Trainer._step = slow_step
from mmsft.pipeline import run_pipeline
run_pipeline(sys.argv[1], quiet=True)
"""


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


def test_killed_during_stage_two_resumes_there(assets, straight, tmp_path):
    out = tmp_path / "run"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(yaml.safe_dump(_pipeline(assets, out, save_steps=2)))
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(driver), str(spec)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    state_file, checkpoint = out / "pipeline_state.json", out / "stages" / "2-blue" / "checkpoints" / "step-000002"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            stage1_done = state_file.is_file() and "red" in json.loads(state_file.read_text())["stages"]
            if stage1_done and (checkpoint / "trainer_state.json").is_file():
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"pipeline ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (out / "stages" / "2-blue" / "final").exists(), "killed too late: stage 2 had finished"
    stage1 = _snapshot(out / "stages" / "1-red")
    result = run_pipeline(spec, quiet=True)
    assert result.skipped == ["red"] and result.trained == ["blue"]
    assert _snapshot(out / "stages" / "1-red") == stage1  # stage 1 was not retrained
    steps = [json.loads(x)["step"] for x in (out / "stages" / "2-blue" / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 8 and steps[0] == 1
    assert result.matrix.to_dict() == straight.matrix.to_dict()
    a = load_file(str(straight.final_model_dir / "model.safetensors"))
    b = load_file(str(result.final_model_dir / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # resumed stage 2 == uninterrupted stage 2, bit for bit
    # a third run does nothing; changing a finished stage's recipe is refused, naming the key
    again = run_pipeline(spec, quiet=True)
    assert again.trained == [] and again.matrix.to_dict() == straight.matrix.to_dict()
    with pytest.raises(PipelineStateError, match=r"optim\.lr: 0\.01 -> 0\.001"):
        run_pipeline(spec, ["optim.lr=1e-3"], quiet=True)


def test_lora_stage_passes_on_a_merged_model(assets, tmp_path):
    doc = _pipeline(assets, tmp_path / "run", steps=3)
    doc["stages"][0]["overrides"] = ["lora.enabled=true", "lora.r=4"]
    doc["evaluators"] = doc["evaluators"][:1]
    doc["evaluate_base"] = False
    result = run_pipeline(doc, quiet=True)
    merged = tmp_path / "run" / "stages" / "1-red" / "merged"
    assert (tmp_path / "run" / "stages" / "1-red" / "final" / "adapter_config.json").is_file()
    assert result.model_dirs["red"] == merged and (merged / "config.json").is_file()
    stage2 = yaml.safe_load((tmp_path / "run" / "stages" / "2-blue" / "config.yaml").read_text())
    assert stage2["model"]["name_or_path"] == str(merged)
    base, weights = load_file(str(assets["model"] / "model.safetensors")), load_file(str(merged / "model.safetensors"))
    changed = [k for k in base if not torch.equal(base[k], weights[k])]
    assert changed and all("proj" in k for k in changed)  # LoRA touched the linear layers only
    assert result.matrix.stages == ["red", "blue"] and result.matrix.main("red", "red") is not None


# --- validation ------------------------------------------------------------------------------------------------
def _minimal(assets: dict[str, Path], tmp_path: Path) -> dict:
    return _pipeline(assets, tmp_path / "run")


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(stage=[]), r"unknown key 'stage'\. Did you mean 'stages'"),
    (lambda d: d["stages"][0].update(recipes="x.yaml"), r"stages\[0\]: unknown key 'recipes'\. Did you mean 'recipe'"),
    (lambda d: d["stages"][1]["recipe"].update(optim={"lrr": 1}), r"stage 2 'blue': unknown config key 'optim\.lrr'.*'lr'"),
    (lambda d: d["stages"][1].update(overrides=["train.max_step=3"]), r"stage 2 'blue'.*'train\.max_step'.*'max_steps'"),
    (lambda d: d["evaluators"][0].update(evaluator="generation_acuracy"), r"Did you mean 'generation_accuracy'"),
    (lambda d: d["evaluators"][0].update(max_sample=3), r"evaluation set 'red'.*'max_sample'.*'max_samples'"),
    (lambda d: d["evaluators"][0].pop("evaluator"), r"evaluators\[0\]: key 'evaluator' is required"),
    (lambda d: d["evaluators"].append(dict(d["evaluators"][0])), r"evaluation set name 'red' is used twice"),
    (lambda d: d["stages"][1].update(name="red"), r"stage name 'red' is used twice"),
    (lambda d: d["stages"][1].update(name="base"), r"'base' is reserved"),
    (lambda d: d["stages"][1].update(name="a/b"), r"name 'a/b' must be"),
    (lambda d: d.update(stages=[]), r"'stages' must be a non-empty list"),
    (lambda d: d["defaults"].pop("model"), r"model\.name_or_path is not set"),
    (lambda d: d.update(evaluate_base="yes"), r"'evaluate_base' must be true or false"),
    (lambda d: d["stages"][0].update(overrides="lr"), r"list of 'key=value' strings"),
])
def test_bad_pipeline_files_fail_naming_the_key(assets, tmp_path, edit, message):
    doc = _minimal(assets, tmp_path)
    edit(doc)
    with pytest.raises(ConfigError, match=message):
        load_pipeline(doc)
    assert not (tmp_path / "run").exists()  # nothing ran


def test_recipe_files_and_command_line_overrides(assets, tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "blue.yaml").write_text(yaml.safe_dump({"data": {"train_path": str(assets["blue"])},
                                                                     "optim": {"lr": 5e-3}}))
    doc = _minimal(assets, tmp_path)
    doc["stages"][1] = {"recipe": "recipes/blue.yaml", "overrides": ["train.seed=3"]}
    (tmp_path / "pipe.yaml").write_text(yaml.safe_dump(doc))
    spec = load_pipeline(tmp_path / "pipe.yaml", ["output_dir=elsewhere", "evaluate_base=false", "train.max_steps=2"])
    assert spec.output_dir == Path("elsewhere") and spec.evaluate_base is False
    assert [s.name for s in spec.stages] == ["red", "blue"]  # a recipe file names its stage by default
    cfg = spec.stages[1].config(Path("elsewhere/stages/2-blue"), start_model="prev/final")
    assert (cfg.optim.lr, cfg.train.seed, cfg.train.max_steps) == (5e-3, 3, 2)
    assert cfg.model.name_or_path == "prev/final" and cfg.train.output_dir == "elsewhere/stages/2-blue"
    assert spec.stages[0].config(Path("x")).train.max_steps == 2  # every-stage overrides reach stage 1 too
    doc["stages"][1]["recipe"] = "recipes/missing.yaml"
    with pytest.raises(ConfigError, match=r"recipe file .*recipes/missing\.yaml does not exist"):
        load_pipeline(doc)


def test_run_command_reports_errors_in_one_line(assets, tmp_path, capsys):
    from mmsft.cli import main

    doc = _minimal(assets, tmp_path)
    doc["evaluators"][0]["batch"] = 3
    (tmp_path / "pipe.yaml").write_text(yaml.safe_dump(doc))
    assert main(["run", str(tmp_path / "pipe.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmsft run: error:") and "'batch'" in err and "\n" not in err
    doc["evaluators"][0].pop("batch")
    (tmp_path / "pipe.yaml").write_text(yaml.safe_dump(doc))
    assert main(["run", str(tmp_path / "pipe.yaml"), "--print-plan"]) == 0
    out = capsys.readouterr().out
    assert "# stage 2: blue" in out and str(tmp_path / "run" / "stages" / "1-red" / "final") in out


def test_the_documented_example_is_a_valid_pipeline():
    import re

    text = (ROOT / "docs" / "pipeline.md").read_text()
    block = re.search(r"<!-- pipeline-example -->\n```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert block, "docs/pipeline.md lost its example block"
    spec = load_pipeline(yaml.safe_load(block.group(1)))
    assert [s.name for s in spec.stages] == ["sokoban-sft", "sokoban-grpo", "gp-sft"]
    assert [e.evaluator for e in spec.evals] == ["puzzle_success", "reward_mean", "puzzle_success"]
    assert spec.stages[1].config(Path("x"), start_model="y").algorithm == "grpo"
