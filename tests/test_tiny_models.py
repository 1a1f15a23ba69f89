"""Tiny offline backbones: build, reload with the Auto classes, one forward with an image and a video."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

from mmsft.models.action_tokenizer import ActionTokenizer  # noqa: E402
from mmsft.models.tiny import FAMILIES, build_tiny  # noqa: E402
from mmsft.models.tiny_tokenizer import SPECIAL_TOKENS  # noqa: E402

VL_FAMILIES = ("qwen2-vl", "qwen2.5-vl", "vla")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {family: build_tiny(family, root / family, seed=0) for family in FAMILIES}


def test_folder_contents(built: dict[str, Path]) -> None:
    common = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
              "tokenizer_config.json", "chat_template.jinja"}
    vision = {"processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json"}
    assert set(os.listdir(built["text"])) == common
    assert set(os.listdir(built["qwen2-vl"])) == common | vision
    assert set(os.listdir(built["qwen2.5-vl"])) == common | vision
    assert set(os.listdir(built["vla"])) == common | vision | {"action_tokenizer.json"}
    config = json.loads((built["qwen2.5-vl"] / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl" and config["text_config"]["hidden_size"] == 64
    assert config["text_config"]["num_hidden_layers"] == 2


def test_text_reload_and_forward(built: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(built["text"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(built["text"])
    assert type(model).__name__ == "Qwen2ForCausalLM"
    for index, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.convert_tokens_to_ids(token) == index
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    for word in ("red", "triangle", "left", "three"):
        assert len(tokenizer(word)["input_ids"]) == 1, word
    enc = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What shape is shown?"}, {"role": "assistant", "content": "circle"}],
        return_tensors="pt", return_dict=True,
    )
    text = tokenizer.decode(enc["input_ids"][0])
    assert text.startswith("<|im_start|>system\n") and "<|im_start|>assistant\ncircle<|im_end|>" in text
    assert model(**enc).logits.shape == (1, enc["input_ids"].shape[1], len(tokenizer))
    ids = tokenizer("<think>x</think><answer>red</answer><|im_end|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>x</think><answer>red</answer>"


@pytest.mark.parametrize("family", VL_FAMILIES)
def test_vl_reload_image_and_video_forward(built: dict[str, Path], family: str) -> None:
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = built[family]
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(folder)
    expected = "Qwen2VLProcessor" if family == "qwen2-vl" else "Qwen2_5_VLProcessor"
    assert type(processor).__name__ == expected
    assert type(processor.video_processor).__name__ == "Qwen2VLVideoProcessor"
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    video_pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert (model.config.image_token_id, model.config.video_token_id) == (image_pad, video_pad)

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (56, 56, 3), dtype=np.uint8))
    video = rng.integers(0, 256, (8, 56, 56, 3), dtype=np.uint8)
    for kind, media in (("image", {"images": [image]}), ("video", {"videos": [video]})):
        messages = [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": "What colour is it?"}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        enc = processor(text=[text], return_tensors="pt", **media)
        assert "mm_token_type_ids" in enc
        pad, code = (image_pad, 1) if kind == "image" else (video_pad, 2)
        n_pad = int((enc["input_ids"] == pad).sum())
        assert 4 <= n_pad <= 64
        assert torch.equal(enc["mm_token_type_ids"] == code, enc["input_ids"] == pad)
        out = model(**enc)
        assert out.logits.shape == (1, enc["input_ids"].shape[1], model.config.text_config.vocab_size)
        assert torch.isfinite(out.logits).all()


def test_vla_action_vocabulary(built: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["vla"])
    config = json.loads((built["vla"] / "config.json").read_text())
    vocab_size = config["text_config"]["vocab_size"]
    assert vocab_size == len(tokenizer)
    actions = ActionTokenizer.load(built["vla"])
    assert actions.n_bins == 256 and actions.vocab_size == vocab_size and actions.action_dim == 7
    ids = actions.action_token_ids
    assert ids[-1] == vocab_size - 1 and len(ids) == 256
    assert tokenizer.convert_ids_to_tokens([int(ids[0]), int(ids[-1])]) == ["<|act_0|>", "<|act_255|>"]
    encoded = tokenizer("<|act_0|><|act_17|>", add_special_tokens=False)["input_ids"]
    assert encoded == [int(ids[0]), int(ids[17])]


def test_build_is_deterministic(tmp_path: Path, built: dict[str, Path]) -> None:
    again = build_tiny("vla", tmp_path / "again", seed=0)
    assert _digest(again) == _digest(built["vla"])
    again = build_tiny("vla", tmp_path / "again", seed=0)  # replacing an earlier build in place
    assert _digest(again) == _digest(built["vla"])
    other = _digest(build_tiny("qwen2.5-vl", tmp_path / "other", seed=1))
    reference = _digest(built["qwen2.5-vl"])
    assert other["model.safetensors"] != reference["model.safetensors"]
    assert other["tokenizer.json"] == reference["tokenizer.json"]  # one vocabulary for every weight seed


def test_build_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny("text", tmp_path / "t", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_overrides_and_errors(tmp_path: Path) -> None:
    from transformers import AutoConfig

    path = build_tiny("qwen2-vl", tmp_path / "wide", hidden_size=128, num_hidden_layers=1, vision_depth=1)
    config = AutoConfig.from_pretrained(path)
    assert config.text_config.hidden_size == 128 and config.vision_config.depth == 1
    assert config.vision_config.hidden_size == 128  # Qwen2-VL merger output follows the LLM width
    with pytest.raises(ValueError, match="hidden_sise.*hidden_size"):
        build_tiny("text", tmp_path / "bad", hidden_sise=32)
    with pytest.raises(ValueError, match="vocab_size=5000 is more than the synthetic corpus supports"):
        build_tiny("text", tmp_path / "bad", vocab_size=5000)
    with pytest.raises(ValueError, match="unknown tiny model family 'qwen25-vl'"):
        build_tiny("qwen25-vl", tmp_path / "bad")
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no config.json"):
        build_tiny("text", tmp_path / "occupied")
    assert (tmp_path / "occupied" / "notes.txt").read_text() == "mine"


def test_cli_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from mmsft.commands import build_tiny as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["text", str(tmp_path / "cli"), "--seed", "3", "--set", "num_hidden_layers=1"])
    assert command.run(args) == 0
    assert "wrote tiny text model" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["num_hidden_layers"] == 1
