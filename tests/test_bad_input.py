"""Every bad input gets a clear error naming the file, sample or key; overlong samples follow a counted policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmsft.config import ConfigError, load_config
from mmsft.data.loaders import load_jsonl
from mmsft.data.schema import DataError
from mmsft.models.loading import build_adapter, load_model
from mmsft.objectives import register_loss
from mmsft.train.producers import SFTProducer
from mmsft.train.trainer import Trainer, TrainingError


def _write(tmp_path: Path, rows: list, name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _image_row(path: str, sample_id: str = "s1") -> dict:
    return {"id": sample_id, "messages": [
        {"role": "user", "content": [{"type": "image", "image": path}, {"type": "text", "text": "colour?"}]},
        {"role": "assistant", "content": "red"}]}


def test_missing_image_names_file_and_sample(tmp_path):
    path = _write(tmp_path, [_image_row("nope.png", "abc")])
    with pytest.raises(DataError, match=r"d\.jsonl:1 \(sample id 'abc'\): image file .*nope\.png does not exist"):
        load_jsonl(path)


def test_corrupt_image_and_video_name_file(tiny_models, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x01garbage")
    video_row = {"id": "v", "messages": [{"role": "user", "content": [{"type": "video", "video": "bad.mp4"},
                                                                       {"type": "text", "text": "dir?"}]},
                                          {"role": "assistant", "content": "left"}]}
    samples = load_jsonl(_write(tmp_path, [_image_row("bad.png"), video_row]))
    adapter = build_adapter(load_model(str(tiny_models["qwen2.5-vl"])))
    with pytest.raises(DataError, match=r"sample id 's1'.*bad\.png could not be decoded"):
        adapter.encode(samples[0])
    with pytest.raises(DataError, match=r"sample id 'v'.*bad\.mp4 could not be decoded"):
        adapter.encode(samples[1])


@pytest.mark.parametrize("row,match", [
    ('{"id": 1, "messages": [', r"d\.jsonl:1: invalid JSON"),
    ({"id": "x"}, r"sample id 'x'.*non-empty list under 'messages'"),
    ({"id": "x", "messages": [{"role": "user", "content": []}]}, r"message 0.*non-empty list of parts"),
    ({"id": "x", "messages": [{"role": "robot", "content": "hi"}]}, r"role 'robot' is not one of"),
    ({"id": "x", "messages": [{"role": "user", "content": [{"type": "audio", "audio": "a.wav"}]}]},
     r"part 0.*type 'audio' is not one of"),
    ({"id": "x", "messages": [{"role": "user", "content": [{"type": "image"}]}]}, r"image part needs a file path"),
    ({"id": "x", "messages": [{"role": "assistant", "content": "only an answer"}]}, r"at least one 'user' message"),
])
def test_malformed_rows(tmp_path, row, match):
    with pytest.raises(DataError, match=match):
        load_jsonl(_write(tmp_path, [row]))


def test_empty_dataset(tmp_path):
    with pytest.raises(DataError, match="contains no samples"):
        load_jsonl(_write(tmp_path, []))


def test_missing_target_and_text_model_with_image(tiny_models, tmp_path, mm_dataset):
    adapter = build_adapter(load_model(str(tiny_models["text"])))
    no_target = load_jsonl(_write(tmp_path, [{"id": "q", "messages": [{"role": "user", "content": "hi"}]}]))[0]
    with pytest.raises(DataError, match=r"sample id 'q'.*final assistant message"):
        adapter.encode(no_target)
    with pytest.raises(DataError, match="text family cannot take image/video parts"):
        adapter.encode(load_jsonl(mm_dataset)[0])


def test_unknown_objective_fails_at_config_load(tmp_path):
    with pytest.raises(ConfigError, match="unknown loss 'dtf'.*'dft'"):
        load_config(None, ["model.name_or_path=x", "data.train_path=y", "objective.name=dtf"])


def test_overlong_policies(tiny_models, text_dataset):
    loaded = load_model(str(tiny_models["text"]))
    samples = load_jsonl(text_dataset)
    lengths = [len(build_adapter(loaded).encode(s)) for s in samples]
    limit = sorted(lengths)[len(lengths) // 2]
    over = sum(n > limit for n in lengths)
    dropper = SFTProducer(samples, build_adapter(loaded, max_length=limit, overlong="drop"), 2, 1, seed=0)
    for _ in range(len(samples) // 2):
        dropper.next_step()
    assert dropper.state.dropped_overlong >= over and dropper.state.dropped_ids
    strict = build_adapter(loaded, max_length=limit, overlong="error")
    longest = samples[lengths.index(max(lengths))]
    with pytest.raises(DataError, match=rf"sample id '{longest.id}'.*exceed max_length={limit}"):
        strict.encode(longest)
    truncating = build_adapter(loaded, max_length=limit, overlong="truncate")
    encoded = truncating.encode(longest)
    assert len(encoded) == limit and encoded.truncated


_CALLS = {"n": 0}


@register_loss("test_nan_after_two", requires=("logp",))
def _nan_after_two(batch, cfg):
    _CALLS["n"] += 1
    loss = -(batch.logp * batch.loss_mask).sum() / batch.loss_mask.sum()
    return (loss * float("nan") if _CALLS["n"] > 2 else loss), {}


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(tiny_models, text_dataset, tmp_path):
    _CALLS["n"] = 0
    cfg = load_config(None, [f"model.name_or_path={tiny_models['text']}", f"data.train_path={text_dataset}",
                             f"train.output_dir={tmp_path / 'run'}", "objective.name=test_nan_after_two",
                             "train.max_steps=5", "train.save_steps=1", "train.micro_batch_size=2",
                             "train.progress=false", "train.tensorboard=false"])
    with pytest.raises(TrainingError, match=r"step 3: loss is nan .*last good checkpoint: .*step-000002"):
        Trainer(cfg).train()
    checkpoint = tmp_path / "run" / "checkpoints" / "step-000002"
    assert (checkpoint / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "run" / "final").exists()
    reloaded = load_model(str(checkpoint / "model"))
    assert all(torch.isfinite(p).all() for p in reloaded.model.parameters())
