"""Trainer: one-step "parameters changed" smoke tests per modality × objective, LoRA, exact resume, eval hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmsft.config import load_config
from mmsft.train.trainer import Trainer


def _config(model: Path, data: Path, out: Path, *extra: str):
    return load_config(None, [f"model.name_or_path={model}", f"data.train_path={data}", f"train.output_dir={out}",
                              "train.micro_batch_size=2", "train.max_steps=1", "optim.lr=1e-2", "optim.max_grad_norm=0",
                              "train.progress=false", "train.tensorboard=false", "train.resume=never", *extra])


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors"))
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out.update(load_file(str(f)))
    return out


def _trainable_changed(trainer: Trainer, before: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    changed, unchanged = [], []
    for name, param in trainer.model.named_parameters():
        if not param.requires_grad:
            continue
        (changed if not torch.equal(before[name], param.detach().cpu()) else unchanged).append(name)
    return changed, unchanged


def _snapshot(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in trainer.model.named_parameters()}


class _Probe(Trainer):
    """Records the parameters right after setup, before the first step."""

    def _setup(self) -> None:
        super()._setup()
        self.before = _snapshot(self)


CASES = [("text", "text_dataset"), ("qwen2-vl", "mm_dataset"), ("qwen2.5-vl", "mm_dataset"), ("vla", "vla_dataset")]


@pytest.mark.parametrize("objective", ["sft", "dft"])
@pytest.mark.parametrize("family,dataset", CASES)
def test_one_step_changes_every_trainable_parameter(tiny_models, request, tmp_path, family, dataset, objective):
    data = request.getfixturevalue(dataset)
    micro = "4" if family == "qwen2.5-vl" else "2"
    cfg = _config(tiny_models[family], data, tmp_path / "run", f"objective.name={objective}",
                  f"train.micro_batch_size={micro}", "train.torch_threads=1")
    trainer = _Probe(cfg)
    result = trainer.train()
    changed, unchanged = _trainable_changed(trainer, trainer.before)
    # Tied/unused embeddings rows aside, every tensor that takes part must move; VL models must train their vision tower.
    assert not unchanged, f"{family}/{objective}: parameters did not change: {unchanged[:10]}"
    if family != "text":
        assert any(".visual." in n or n.startswith("model.visual") for n in changed)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics and "train/loss" in metrics[0] and metrics[0]["train/loss"] > 0
    assert (result.final_model_dir / "config.json").is_file()


def test_lora_one_step_changes_only_adapters(tiny_models, text_dataset, tmp_path):
    # Two steps: LoRA's B starts at zero, so A only receives gradient from the second step on.
    cfg = _config(tiny_models["text"], text_dataset, tmp_path / "run", "lora.enabled=true", "lora.r=4",
                  "train.max_steps=2")
    trainer = _Probe(cfg)
    trainer.train()
    changed, unchanged = _trainable_changed(trainer, trainer.before)
    assert changed and all("lora_" in n for n in changed) and not unchanged
    frozen = [n for n, p in trainer.model.named_parameters() if not p.requires_grad]
    assert all(torch.equal(trainer.before[n], dict(trainer.model.named_parameters())[n].detach()) for n in frozen)
    assert (tmp_path / "run" / "final" / "adapter_config.json").is_file()


@pytest.mark.parametrize("lora", [False, True])
def test_resume_is_bit_identical(tiny_models, text_dataset, tmp_path, lora):
    common = ["train.micro_batch_size=2", "train.grad_accum=2", "optim.lr=5e-3", "optim.max_grad_norm=1.0",
              "optim.warmup_ratio=0.3", f"lora.enabled={str(lora).lower()}", "lora.r=4"]
    straight = _config(tiny_models["text"], text_dataset, tmp_path / "straight", "train.max_steps=6", *common)
    Trainer(straight).train()
    split = _config(tiny_models["text"], text_dataset, tmp_path / "split", "train.max_steps=6", "train.save_steps=3",
                    *common)

    class _Crash(Trainer):
        def _step(self, step):
            if step == 3:
                raise KeyboardInterrupt
            return super()._step(step)

    with pytest.raises(KeyboardInterrupt):
        _Crash(split).train()
    assert (tmp_path / "split" / "checkpoints" / "step-000003").is_dir()
    resumed = _config(tiny_models["text"], text_dataset, tmp_path / "split", "train.max_steps=6", "train.resume=auto",
                      *common)
    result = Trainer(resumed).train()
    assert result.steps == 6
    a, b = _weights(tmp_path / "straight" / "final"), _weights(tmp_path / "split" / "final")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4, 5, 6]


def test_eval_hook_and_run_directory(tiny_models, mm_dataset, tmp_path):
    cfg = _config(tiny_models["qwen2.5-vl"], mm_dataset, tmp_path / "run", f"data.eval_path={mm_dataset}",
                  "train.max_steps=2", "train.eval_steps=1", "eval.max_new_tokens=3", "train.tensorboard=true")
    result = Trainer(cfg).train()
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/accuracy" in r for r in records)
    assert "eval/accuracy" in result.metrics
    assert (run / "config.yaml").is_file() and (run / "summary.json").is_file()
    assert list((run / "tensorboard").glob("events.*"))
    assert (run / "checkpoints" / "step-000002" / "model" / "model.safetensors").is_file()
    assert not list((run / "checkpoints").glob(".tmp-*"))
