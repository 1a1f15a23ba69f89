"""RL stage: one-step GRPO smoke tests (every trainable parameter changes), dynamic-sampling accounting, presets,
OPD teacher checks."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from mmsft.config import ConfigError, load_config
from mmsft.rewards import register_reward
from tests.test_trainer import _Probe, _trainable_changed


@register_reward("test_text_hash")
def _text_hash(samples, completions, **_):
    """A deterministic, varied reward so every group has non-zero reward variance."""
    return [int(hashlib.md5(c.encode()).hexdigest()[:4], 16) / 65535 for c in completions]


@register_reward("test_first_prompt_constant")
def _constant_for_some(samples, completions, **_):
    return [0.0 if s.id.endswith(("0", "2", "4", "6", "8")) else len(c) % 3 for s, c in zip(samples, completions)]


def _rl_config(model, data, out, *extra):
    return load_config(None, ["algorithm=grpo", f"model.name_or_path={model}", f"data.train_path={data}",
                              f"train.output_dir={out}", "train.max_steps=1", "train.micro_batch_size=4",
                              "rl.prompts_per_step=2", "rl.group_size=3", "rl.max_new_tokens=5", "optim.lr=1e-2",
                              "optim.max_grad_norm=0", "rl.rewards=test_text_hash", "train.progress=false",
                              "train.tensorboard=false", "train.resume=never", *extra])


@pytest.mark.parametrize("family,dataset", [("text", "text_dataset"), ("qwen2.5-vl", "mm_dataset")])
def test_one_step_grpo_changes_every_trainable_parameter(tiny_models, request, tmp_path, family, dataset):
    data = request.getfixturevalue(dataset)
    trainer = _Probe(_rl_config(tiny_models[family], data, tmp_path / "run", "rl.mini_batches=1"))
    trainer.train()
    changed, unchanged = _trainable_changed(trainer, trainer.before)
    assert not unchanged, f"unchanged after a GRPO step: {unchanged[:10]}"
    if family != "text":
        assert any("visual" in n for n in changed)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    for key in ("reward/total", "rollout/response_length", "train/clipfrac", "train/kl", "train/grad_norm"):
        assert key in record, key
    assert list((tmp_path / "run" / "rollouts").glob("batch-*.jsonl"))


def test_dynamic_sampling_drops_zero_variance_groups_and_counts_them(tiny_models, text_dataset, tmp_path):
    cfg = _rl_config(tiny_models["text"], text_dataset, tmp_path / "run", "algorithm=dapo",
                     "rl.rewards=test_first_prompt_constant", "rl.prompts_per_step=4", "rl.max_resample=3",
                     "train.max_steps=2", "rl.max_new_tokens=6")
    trainer = _Probe(cfg)
    trainer.train()
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    dropped = sum(r.get("rollout/dropped_zero_std_groups", 0) for r in records)
    rounds = [r["rollout/generation_rounds"] for r in records if "rollout/generation_rounds" in r]
    assert dropped >= 1 and max(rounds) >= 2
    assert all(r.get("rollout/kept_groups", 4) <= 4 for r in records)


def test_presets_expand_and_stay_overridable():
    cfg = load_config(None, ["algorithm=dr_grpo", "objective.args.clip_high=0.3"])
    assert cfg.stage == "rl" and cfg.rl.advantage == "dr_grpo"
    assert cfg.objective.loss_agg_mode == "seq-mean-token-sum-norm"
    assert cfg.objective.args == {"clip_low": 0.2, "clip_high": 0.3}
    gspo = load_config(None, ["algorithm=gspo"])
    assert gspo.objective.name == "gspo" and gspo.objective.args["clip_low"] == 3e-4 and gspo.rl.mini_batches == 4
    with pytest.raises(ConfigError, match=r"objective.args.clip_hgh.*Did you mean 'clip_high'"):
        load_config(None, ["algorithm=grpo", "objective.args.clip_hgh=0.3"])
    with pytest.raises(ConfigError, match="Did you mean .*'grpo'"):
        load_config(None, ["algorithm=gpro"])


def test_opd_needs_a_teacher_with_the_same_tokenizer(tiny_models, mm_dataset, tmp_path):
    from mmsft.train.trainer import Trainer

    with pytest.raises(ValueError, match="needs rl.teacher"):
        Trainer(_rl_config(tiny_models["qwen2.5-vl"], mm_dataset, tmp_path / "a", "algorithm=opd", "rl.rewards=")).train()
    with pytest.raises(ValueError, match="does not share the student's tokenizer"):
        Trainer(_rl_config(tiny_models["qwen2.5-vl"], mm_dataset, tmp_path / "b", "algorithm=opd", "rl.rewards=",
                           f"rl.teacher={tiny_models['vla']}")).train()


def test_opd_step_runs_with_a_teacher(tiny_models, mm_dataset, tmp_path):
    from mmsft.models.tiny import build_tiny

    teacher = build_tiny("qwen2.5-vl", tmp_path / "teacher", seed=3)
    trainer = _Probe(_rl_config(tiny_models["qwen2.5-vl"], mm_dataset, tmp_path / "run", "algorithm=opd",
                                "rl.rewards=", f"rl.teacher={teacher}"))
    trainer.train()
    changed, _ = _trainable_changed(trainer, trainer.before)
    assert changed
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train/loss"] != 0.0
