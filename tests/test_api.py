"""The script API (mmsft/api.py): config overrides, train, load_policy, evaluate, run_pipeline."""

from __future__ import annotations

import json

import pytest

from mmsft import api
from mmsft.config import ConfigError, RunConfig


def test_config_overrides_in_every_form(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.5\ntrain:\n  max_steps: 7\n")
    cfg = api.config(str(path), train={"seed": 3}, optim__weight_decay=0.1, **{"data.max_length": 99})
    assert isinstance(cfg, RunConfig)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.train.max_steps, cfg.train.seed, cfg.data.max_length) == \
        (0.5, 0.1, 7, 3, 99)
    again = api.config(cfg, train__max_steps=1)
    assert again.train.max_steps == 1 and again.optim.lr == 0.5 and cfg.train.max_steps == 7
    assert api.config({"objective": {"name": "dft"}}).objective.name == "dft"
    with pytest.raises(ConfigError, match="optim.lrr.*Did you mean"):
        api.config(None, optim__lrr=1)
    with pytest.raises(ConfigError, match="expected a YAML path"):
        api.config(42)


def _sft(model, data, out):
    return {"model": {"name_or_path": str(model)}, "data": {"train_path": str(data), "eval_path": str(data)},
            "train": {"output_dir": str(out), "max_steps": 2, "micro_batch_size": 2, "progress": False,
                      "tensorboard": False, "resume": "never"}, "optim": {"lr": 1e-3}, "eval": {"max_new_tokens": 4}}


def test_train_load_policy_and_evaluate(tiny_models, text_dataset, tmp_path):
    result = api.train(_sft(tiny_models["text"], text_dataset, tmp_path / "run"), train={"max_steps": 3})
    assert result.steps == 3 and (result.final_model_dir / "config.json").is_file()
    assert "train/loss" in result.metrics and json.loads((result.run_dir / "summary.json").read_text())["steps"] == 3
    policy = api.load_policy(result.final_model_dir)
    assert policy.family == "text"
    greedy = policy.generate(["Hello there", "What is it?"], max_new_tokens=4)
    assert len(greedy) == 2 and all(isinstance(t, str) for t in greedy)
    assert policy.generate(["Hello there"], max_new_tokens=4) == greedy[:1]
    sampled = policy.generate(["Hello there"] * 2, max_new_tokens=4, temperature=1.0, seed=1)
    assert sampled == policy.generate(["Hello there"] * 2, max_new_tokens=4, temperature=1.0, seed=1)
    metrics = api.evaluate(result.final_model_dir, text_dataset, out_dir=tmp_path / "eval", max_new_tokens=4)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["total"] > 0
    assert (tmp_path / "eval" / "predictions.jsonl").is_file()
    assert api.evaluate(policy, text_dataset, max_new_tokens=4) == metrics  # the loaded weights are reused


def test_run_pipeline(tiny_models, text_dataset, tmp_path):
    recipe = _sft(tiny_models["text"], text_dataset, tmp_path / "unused")
    spec = {"output_dir": str(tmp_path / "p"), "stages": [{"name": "sft", "recipe": recipe}],
            "evaluators": [{"name": "held", "evaluator": "generation_accuracy", "path": str(text_dataset),
                            "max_new_tokens": 2}]}
    result = api.run_pipeline(spec, quiet=True)
    assert result.trained == ["sft"] and 0.0 <= result.matrix.main("sft", "held") <= 1.0


def test_overrides_of_a_file_reapply_the_preset(tmp_path):
    path = tmp_path / "rl.yaml"
    path.write_text("algorithm: grpo\nrl:\n  rewards: cls_accuracy\n")
    cfg = api.config(str(path), algorithm="dapo", rl={"group_size": 3}, objective__args={"clip_high": 0.3},
                     plugins=["tasks.image_classification.plugin"])
    assert cfg.algorithm == "dapo" and cfg.rl.dynamic_sampling and cfg.rl.group_size == 3
    assert cfg.objective.args["clip_high"] == 0.3 and cfg.objective.args["clip_low"] == 0.2
    assert cfg.rl.rewards == "cls_accuracy" and cfg.plugins == ["tasks.image_classification.plugin"]
