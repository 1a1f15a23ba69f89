"""Model cards: final/, every checkpoint's model/ and a pipeline's merged/ carry a README.md with the Hugging Face
front matter, base model, method with paper citations, data, the metrics logged up to that point, the command to
reproduce it and a transformers snippet that really loads the folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mmsft.report.environment import command_line
from mmsft.report.model_card import read_front_matter
from mmsft.train.checkpoint import verify_checkpoint
from mmsft.train.trainer import Trainer
from tests.test_report import read_metrics, rl_config, sft_config

SECTIONS = ("## Method", "## Data", "## Metrics", "## Reproduce", "## Load with transformers", "## Environment")


def _snippet(card: str) -> str:
    return re.search(r"```python\n(.*?)```", card, re.S).group(1)


def _metric_rows(card: str) -> dict[str, str]:
    return dict(re.findall(r"^\| ([\w/.=-]+) \| ([^|]+) \|$", card, re.M))


@pytest.fixture(scope="module")
def sft_run(tiny_models, text_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("card-sft") / "run"
    Trainer(sft_config(tiny_models["text"], text_dataset, out, "train.save_steps=2", "train.save_total_limit=0",
                       "train.tensorboard=false")).train()
    return out


def test_final_and_checkpoint_cards(sft_run, tiny_models, text_dataset):
    card = (sft_run / "final" / "README.md").read_text()
    meta = read_front_matter(card)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert meta["tags"][:2] == ["mmsft", "sft"] and "base_model" not in meta  # a local folder is not a hub id
    for section in SECTIONS:
        assert section in card, section
    assert f"base model `{tiny_models['text']}`" in card and "# run — final model" in card
    assert "**Objective** `sft`: Cross-entropy on the response tokens" in card
    assert f"training data: `{text_dataset}` (16 rows)" in card
    last = {}
    for record in read_metrics(sft_run):
        last.update(record)
    rows = _metric_rows(card)
    assert rows["steps"] == "3" and rows["train/loss"] == f"{last['train/loss']:.4g}"
    assert f"mmsft train {sft_run / 'config.yaml'} train.output_dir=runs/reproduce train.resume=never" in card

    checkpoint = sft_run / "checkpoints" / "step-000002"
    verify_checkpoint(checkpoint)  # the card is part of the checkpoint's manifest
    ckpt_card = (checkpoint / "model" / "README.md").read_text()
    step2 = next(r for r in read_metrics(sft_run) if r["step"] == 2)
    assert "checkpoint at step 2" in ckpt_card and _metric_rows(ckpt_card)["steps"] == "2"
    assert _metric_rows(ckpt_card)["train/loss"] == f"{step2['train/loss']:.4g}"
    assert str(checkpoint / "model") in _snippet(ckpt_card) and ".tmp-" not in ckpt_card


def test_the_load_snippet_loads_the_model(sft_run):
    import torch
    from safetensors.torch import load_file

    scope: dict = {}
    exec(_snippet((sft_run / "final" / "README.md").read_text()), scope)  # noqa: S102 — our own generated snippet
    saved = load_file(str(sft_run / "final" / "model.safetensors"))
    name, tensor = next(iter(saved.items()))
    assert torch.equal(scope["model"].state_dict()[name], tensor)
    assert scope["processor"]("red").input_ids


def test_rl_card_cites_the_papers(tiny_models, text_dataset, tmp_path):
    run = tmp_path / "run"
    Trainer(rl_config(tiny_models["text"], text_dataset, run, "train.tensorboard=false")).train()
    card = (run / "final" / "README.md").read_text()
    assert read_front_matter(card)["tags"] == ["mmsft", "rl", "grpo", "ppo_clip"]
    method = card.split("## Method")[1].split("## Data")[0]
    assert "**Algorithm preset** `grpo`: GRPO — Shao et al., DeepSeekMath" in method
    assert "[arXiv:2402.03300](https://arxiv.org/abs/2402.03300)" in method  # preset and advantage
    assert "[arXiv:1707.06347]" in method  # PPO clip
    assert "**KL** coefficient 0.04 (k3, in the loss)" in method
    assert "`test_report_len` (Test reward: shorter completions score higher" in method


def test_lora_card_loads_through_peft(tiny_models, text_dataset, tmp_path):
    run = tmp_path / "run"
    Trainer(sft_config(tiny_models["text"], text_dataset, run, "lora.enabled=true", "lora.r=4", "train.max_steps=1",
                       "train.tensorboard=false")).train()
    card = (run / "final" / "README.md").read_text()
    assert read_front_matter(card)["library_name"] == "peft" and "**LoRA** r=4" in card
    scope: dict = {}
    exec(_snippet(card), scope)  # noqa: S102
    assert type(scope["model"]).__name__ == "PeftModelForCausalLM"
    adapter = json.loads((run / "final" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] in card


def test_command_line_is_recorded_only_for_the_cli():
    assert command_line(["/x/.venv/bin/mmsft", "train", "a b.yaml", "optim.lr=1e-4"]) == \
        "mmsft train 'a b.yaml' optim.lr=1e-4"
    assert command_line(["/x/mmsft/cli.py", "run", "p.yaml"]) == "mmsft run p.yaml"
    assert command_line(["/usr/bin/pytest", "-q"]) is None
