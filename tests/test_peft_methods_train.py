"""PEFT methods by name in YAML: training through the trainer (SpIEL reselection and LoRAMoE balancing hooks),
the exported adapter folder loads through mmsft's loader, peft's own options pass through, config errors."""

from __future__ import annotations

import json

import pytest
import torch

from mmsft.config import ConfigError, load_config
from mmsft.train.trainer import Trainer
from tests.test_trainer import _config


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _typed_data(tmp_path, with_types=True):
    rows = [{"id": f"m{i}", "messages": [{"role": "user", "content": f"Fact {i}?"},
                                         {"role": "assistant", "content": "yes" if i % 2 else "no"}],
             "meta": {"task_type": i % 2} if with_types else {}} for i in range(8)]
    path = tmp_path / ("typed.jsonl" if with_types else "untyped.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sparse_spiel_trains_and_final_loads(tiny_models, text_dataset, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = tmp_path / "sparse"
    cfg = _config(tiny_models["text"], text_dataset, run, "train.max_steps=2", "lora.enabled=true",
                  "lora.method=sparse", "lora.method_args={density: 0.05, regrow_every: 1, regrow_rate: 0.5}")
    Trainer(cfg).train()
    records = _metrics(run)
    assert all(r["sparse/replaced"] > 0 for r in records if "sparse/replaced" in r)
    assert sum("sparse/replaced" in r for r in records) == 2
    config = json.loads((run / "final" / "adapter_config.json").read_text())
    assert config["peft_type"] == "SPARSE"
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_models["text"]), run / "final")
    assert any("sparse_values" in n for n, _ in loaded.named_parameters())


def test_loramoe_balancing_needs_task_types(tiny_models, tmp_path):
    args = "lora.method_args={num_experts: 4, r: 2, blc_weight: 0.1, blc_alpha: 0.1}"
    run = tmp_path / "moe"
    cfg = _config(tiny_models["text"], _typed_data(tmp_path), run, "lora.enabled=true", "lora.method=loramoe", args)
    Trainer(cfg).train()
    assert _metrics(run)[0]["train/peft_aux_loss"] > 0
    bad = _config(tiny_models["text"], _typed_data(tmp_path, with_types=False), tmp_path / "bad", "lora.enabled=true",
                  "lora.method=loramoe", args)
    with pytest.raises(ConfigError, match="meta.task_type"):
        Trainer(bad).train()


def test_ssf_and_peft_builtin_options(tiny_models, text_dataset, tmp_path):
    run = tmp_path / "ssf"
    cfg = _config(tiny_models["text"], text_dataset, run, "lora.enabled=true", "lora.method=ssf",
                  "lora.target_modules=q_proj,v_proj")
    result = Trainer(cfg).train()
    assert json.loads((run / "final" / "adapter_config.json").read_text())["peft_type"] == "SSF"
    assert torch.isfinite(torch.tensor(result.metrics["train/loss"]))
    dora = _config(tiny_models["text"], text_dataset, tmp_path / "dora", "lora.enabled=true", "lora.r=2",
                   "lora.method_args={use_dora: true}")
    Trainer(dora).train()
    assert json.loads((tmp_path / "dora" / "final" / "adapter_config.json").read_text())["use_dora"] is True


def test_peft_config_errors():
    with pytest.raises(ConfigError, match="Did you mean 'ssf'"):
        load_config(None, ["lora.enabled=true", "lora.method=sff"])
    with pytest.raises(ConfigError, match="density"):
        load_config(None, ["lora.enabled=true", "lora.method=sparse", "lora.method_args={densty: 0.1}"])
    with pytest.raises(ConfigError, match="density must be in"):
        load_config(None, ["lora.enabled=true", "lora.method=sparse", "lora.method_args={density: 2}"])


def test_roste_and_locft_by_name(tiny_models, text_dataset, tmp_path):
    run = tmp_path / "roste"
    cfg = _config(tiny_models["text"], text_dataset, run, "train.max_steps=2", "lora.enabled=true",
                  "lora.method=roste", "lora.method_args={target_modules: [q_proj], reselect_every: 1}")
    Trainer(cfg).train()
    assert all(0.0 <= r["roste/rotated_fraction"] <= 1.0 for r in _metrics(run) if "roste/rotated_fraction" in r)
    assert sum("roste/rotated_fraction" in r for r in _metrics(run)) == 2
    with pytest.raises(ConfigError, match="target_modules"):
        load_config(None, ["lora.enabled=true", "lora.method=locft"])
    run = tmp_path / "locft"
    Trainer(_config(tiny_models["text"], text_dataset, run, "lora.enabled=true", "lora.method=locft",
                    "lora.method_args={target_modules: [down_proj], layers_to_transform: [1]}")).train()
    assert json.loads((run / "final" / "adapter_config.json").read_text())["peft_type"] == "LOCFT"
