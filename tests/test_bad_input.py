"""Every bad input gets a clear one-line error naming the file, line, sample, key or path, or a counted skip.

The table below is the catalogue: each case says which area it hits (cli, config, data, media, models, rewards,
checkpoints, training), what it does, the error type and what the message must say. For every error case the test
also checks the message is one line and is a bad-input error type (so the CLI prints it as one line and exits 2);
``cli`` cases run ``mmsft.cli.main`` in-process and check exactly that.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from mmsft.cli import main
from mmsft.config import ConfigError, load_config
from mmsft.data.loaders import load_dataset, load_jsonl
from mmsft.data.schema import DataError, MediaPolicy
from mmsft.errors import is_user_error
from mmsft.models.loading import ModelLoadError, build_adapter, load_model
from mmsft.objectives import register_loss
from mmsft.registry import RegistryError
from mmsft.rewards import RewardError, compute_rewards, register_reward
from mmsft.train.checkpoint import (MARKER, CheckpointError, resolve_resume, restore_training_state, save_checkpoint,
                                    write_marker)
from mmsft.train.producers import SFTProducer
from mmsft.train.trainer import Trainer, TrainingError


# ------------------------------------------------------------------------------------------------ helpers
def _text_row(sample_id: str = "s1", prompt: str = "hi") -> dict:
    return {"id": sample_id, "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "ok"}]}


def _media_row(ref: str, sample_id: str = "s1", kind: str = "image") -> dict:
    return {"id": sample_id, "messages": [
        {"role": "user", "content": [{"type": kind, kind: ref}, {"type": "text", "text": "colour?"}]},
        {"role": "assistant", "content": "red"}]}


def _user(content: Any) -> dict:
    return {"id": "x", "messages": [{"role": "user", "content": content}]}


class Ctx:
    """What a case may use: a fresh folder (data root ``tmp/data``), files in it, and pytest fixtures on demand."""

    def __init__(self, request: pytest.FixtureRequest, tmp: Path) -> None:
        self.request, self.tmp = request, tmp
        self.data = tmp / "data"
        self.data.mkdir()

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    def model(self, family: str = "text") -> str:
        return str(self.fixture("tiny_models")[family])

    def jsonl(self, rows: list, name: str = "d.jsonl") -> Path:
        path = self.data / name
        path.write_bytes(b"".join(r if isinstance(r, bytes) else ((r if isinstance(r, str) else json.dumps(r)) + "\n")
                                  .encode() for r in rows))
        return path

    def png(self, path: Path, size: int = 32) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (size, size), (200, 30, 30)).save(path)
        return path

    def yaml(self, text: str) -> Path:
        path = self.tmp / "c.yaml"
        path.write_text(text)
        return path

    def train_args(self, *extra: str, data: Path | None = None) -> list[str]:
        return ["train", f"model.name_or_path={self.model()}", f"data.train_path={data or self.fixture('text_dataset')}",
                f"train.output_dir={self.tmp / 'run'}", "train.max_steps=1", "train.progress=false",
                "train.tensorboard=false", *extra]

    def checkpoint(self, step: int = 1) -> Path:
        param = torch.nn.Parameter(torch.ones(4))
        optimizer = torch.optim.AdamW([param], lr=0.1)
        param.sum().backward()
        optimizer.step()
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        return save_checkpoint(self.tmp / "ckrun", step, _StubModel(), None, optimizer, scheduler, {"producer": {}})

    def pickle_checkpoint(self) -> Path:
        """A checkpoint in the old pickled layout whose optimizer.pt runs code when unpickled."""
        folder = self.tmp / "evil" / "checkpoints" / "step-000001"
        (folder / "model").mkdir(parents=True)
        shutil.copytree(self.model(), folder / "model", dirs_exist_ok=True)
        (folder / "trainer_state.json").write_text('{"step": 1, "producer": {}}')
        for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):
            (folder / name).write_bytes(pickle.dumps(_Payload(self.tmp / "pwned")))
        return folder


class _StubModel:
    def save_pretrained(self, folder, safe_serialization=True):
        Path(folder).mkdir(parents=True, exist_ok=True)
        save_file({"w": torch.ones(4)}, str(Path(folder) / "model.safetensors"))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _no_pwn(ctx: Ctx) -> None:
    assert not (ctx.tmp / "pwned").exists(), "a pickle was executed"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _symlink(ctx: Ctx) -> Path:
    outside = ctx.png(ctx.tmp / "outside.png")
    (ctx.data / "link.png").symlink_to(outside)
    return ctx.jsonl([_media_row("link.png")])


def _bomb(ctx: Ctx) -> Any:
    ctx.fixture("monkeypatch").setattr(Image, "MAX_IMAGE_PIXELS", 100)
    ctx.png(ctx.data / "big.png", size=64)  # 4096 pixels > 2 × 100: PIL refuses before decoding
    sample = load_jsonl(ctx.jsonl([_media_row("big.png")]))[0]
    return build_adapter(load_model(ctx.model("qwen2.5-vl"))).encode(sample)


def _no_tokenizer(ctx: Ctx) -> str:
    folder = ctx.tmp / "no-tokenizer"
    shutil.copytree(ctx.model(), folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    return str(folder)


def _half_weights(ctx: Ctx) -> str:
    folder = ctx.tmp / "half"
    shutil.copytree(ctx.model(), folder)
    _truncate(folder / "model.safetensors")
    return str(folder)


def _pickled_weights(ctx: Ctx) -> str:
    folder = ctx.tmp / "bin-only"
    shutil.copytree(ctx.model(), folder)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(ctx.tmp / "pwned")))
    (folder / "model.safetensors").unlink()
    return str(folder)


def _encode(ctx: Ctx, row: dict, family: str = "text", **adapter_kwargs: Any) -> Any:
    sample = load_jsonl(ctx.jsonl([row]), check_media=False)[0]
    return build_adapter(load_model(ctx.model(family)), **adapter_kwargs).encode(sample)


@register_reward("test_bad_input_boom")
def _boom(samples, completions, **_):
    return [1 / 0 for _ in completions]


@register_reward("test_bad_input_short")
def _short(samples, completions, **_):
    return [1.0]


@register_reward("test_bad_input_nan")
def _nan(samples, completions, **_):
    return [1.0, float("nan")]


@register_reward("test_bad_input_word")
def _word(samples, completions, **_):
    return ["high", 1.0]


def _rewards(name: str) -> Any:
    samples = [SimpleNamespace(id="a"), SimpleNamespace(id="b")]
    return compute_rewards([name], None, samples, ["x", "y"])


def _resume_into_other_optimizer(ctx: Ctx) -> Any:
    other = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))])
    return restore_training_state(ctx.checkpoint(), other, torch.optim.lr_scheduler.LambdaLR(other, lambda s: 1.0))


def _tamper(ctx: Ctx, name: str, text: str) -> Path:
    """Rewrite a state file and re-sign the manifest, as an attacker (or a bug) could."""
    folder = ctx.checkpoint()
    (folder / name).write_text(text)
    write_marker(folder, 1)
    return folder


def _overlong_drop(ctx: Ctx) -> str:
    loaded = load_model(ctx.model())
    samples = load_jsonl(ctx.jsonl([_text_row("short", "hi"), _text_row("long", "word " * 60)]))
    producer = SFTProducer(samples, build_adapter(loaded, max_length=24, overlong="drop"), 1, 1, seed=0)
    producer.next_step()
    producer.next_step()
    return f"dropped {producer.state.dropped_overlong} overlong: {producer.state.dropped_ids}"


# ------------------------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Case:
    area: str
    name: str
    run: Callable[[Ctx], Any]  # raises the error; for cli cases returns argv; for skips returns the counted outcome
    error: type[BaseException] | None  # None: a counted skip
    match: str
    after: Callable[[Ctx], None] | None = None


def _cfg(*overrides: str) -> Callable[[Ctx], Any]:
    return lambda ctx: load_config(None, list(overrides))


def _rows(*rows: Any) -> Callable[[Ctx], Any]:
    return lambda ctx: load_jsonl(ctx.jsonl(list(rows)))


E = r"expected an integer"
_FF = b"\xff\n"
CASES = [
    # config: bounds declared with each field, checked at load
    Case("config", "micro-batch-0", _cfg("train.micro_batch_size=0"), ConfigError, rf"'train.micro_batch_size': {E} >= 1, got 0"),
    Case("config", "grad-accum-0", _cfg("train.grad_accum=0"), ConfigError, rf"'train.grad_accum': {E} >= 1, got 0"),
    Case("config", "max-steps-negative", _cfg("train.max_steps=-5"), ConfigError, rf"'train.max_steps': {E} >= 0, got -5"),
    Case("config", "save-steps-negative", _cfg("train.save_steps=-1"), ConfigError, r"'train.save_steps': .* >= 0, got -1"),
    Case("config", "warmup-over-1", _cfg("optim.warmup_ratio=1.5"), ConfigError,
         r"'optim.warmup_ratio': expected a number >= 0 and <= 1, got 1.5"),
    Case("config", "epochs-nan", _cfg("train.epochs=.nan"), ConfigError, r"'train.epochs': expected a finite number, got nan"),
    Case("config", "epochs-0", _cfg("train.epochs=0"), ConfigError, r"'train.epochs': expected a number > 0, got 0.0"),
    Case("config", "image-pixels-0", _cfg("data.image_max_pixels=0"), ConfigError, rf"'data.image_max_pixels': {E} >= 1"),
    Case("config", "video-frames-0", _cfg("data.video_max_frames=0"), ConfigError, rf"'data.video_max_frames': {E} >= 1"),
    Case("config", "video-fps-negative", _cfg("data.video_fps=-1"), ConfigError, r"'data.video_fps': expected a number > 0"),
    Case("config", "image-min-over-max",
         lambda ctx: load_config(ctx.yaml("data:\n  image_min_pixels: 5000\n  image_max_pixels: 1000\n")), ConfigError,
         r"'data.image_min_pixels': .* <= data.image_max_pixels \(1000\), got 5000"),
    Case("config", "frames-min-over-max", _cfg("data.video_min_frames=8", "data.video_max_frames=4"), ConfigError,
         r"'data.video_min_frames': .* <= data.video_max_frames \(4\), got 8"),
    Case("config", "lr-inf", _cfg("optim.lr=.inf"), ConfigError, r"'optim.lr': expected a finite number, got inf"),
    Case("config", "beta2-1", _cfg("optim.beta2=1"), ConfigError, r"'optim.beta2': expected a number >= 0 and < 1, got 1.0"),
    Case("config", "lora-dropout-1", _cfg("lora.dropout=1"), ConfigError, r"'lora.dropout': .* < 1, got 1.0"),
    Case("config", "seed-negative", _cfg("train.seed=-1"), ConfigError, r"'train.seed': .* >= 0 and <= 4294967295, got -1"),
    Case("config", "logging-steps-0", _cfg("train.logging_steps=0"), ConfigError, rf"'train.logging_steps': {E} >= 1"),
    Case("config", "eval-batch-0", _cfg("eval.batch_size=0"), ConfigError, rf"'eval.batch_size': {E} >= 1, got 0"),
    Case("config", "max-length-0", _cfg("data.max_length=0"), ConfigError, rf"'data.max_length': {E} >= 1, got 0"),
    Case("config", "chunk-0", _cfg("model.logprob_chunk_size=0"), ConfigError, rf"'model.logprob_chunk_size': {E} >= 1"),
    Case("config", "yaml-yes-for-a-choice", lambda ctx: load_config(ctx.yaml("train:\n  mixed_precision: yes\n")),
         ConfigError, r"c\.yaml: config key 'train.mixed_precision': expected one of \['auto', 'no', 'bf16', 'fp16'\], got True "
         r"\(YAML reads unquoted yes/no"),
    Case("config", "bool-for-int", lambda ctx: load_config(ctx.yaml("train:\n  micro_batch_size: true\n")), ConfigError,
         rf"c\.yaml: config key 'train.micro_batch_size': {E}, got True"),
    Case("config", "bool-for-path", lambda ctx: load_config(ctx.yaml("model:\n  name_or_path: no\n")), ConfigError,
         r"'model.name_or_path': expected a string, got False \(YAML reads unquoted"),
    Case("config", "media-roots-mapping", lambda ctx: load_config(ctx.yaml("data:\n  media_roots: {a: 1}\n")),
         ConfigError, r"'data.media_roots': expected a list \(or a comma-separated string\)"),
    Case("config", "bound-in-yaml-names-file", lambda ctx: load_config(ctx.yaml("train:\n  grad_accum: -2\n")),
         ConfigError, r"c\.yaml: config key 'train.grad_accum': .*got -2"),
    Case("config", "unknown-key", _cfg("optim.lrr=1"), ConfigError, r"unknown config key 'optim.lrr'.*Did you mean 'lr'"),
    Case("config", "invalid-yaml", lambda ctx: load_config(ctx.yaml("train: [1, 2\n")), ConfigError,
         r"config file .*c\.yaml is not valid YAML: .*line"),
    Case("config", "top-level-list", lambda ctx: load_config(ctx.yaml("- 1\n")), ConfigError,
         r"c\.yaml: expected a mapping at the top level"),
    Case("config", "missing-file", lambda ctx: load_config(ctx.tmp / "nope.yaml"), ConfigError, r"nope\.yaml does not exist"),
    Case("config", "section-as-value", _cfg("optim=3"), ConfigError, r"'optim' is a section"),
    Case("config", "not-key-value", _cfg("novalue"), ConfigError, r"'novalue' is not of the form key=value"),
    Case("config", "unknown-loss", _cfg("objective.name=dtf"), ConfigError, r"unknown loss 'dtf'.*'dft'"),
    Case("config", "bad-choice", _cfg("model.dtype=fp8"), ConfigError, r"'model.dtype': 'fp8' is not one of"),
    Case("config", "unknown-reward", _cfg("algorithm=grpo", "rl.rewards=acuracy"), ConfigError, r"unknown reward 'acuracy'"),
    # data: rows, encodings, ids
    Case("data", "invalid-json", _rows('{"id": 1, "messages": ['), DataError, r"d\.jsonl:1: invalid JSON"),
    Case("data", "no-messages", _rows({"id": "x"}), DataError, r"d\.jsonl:1 \(sample id 'x'\): expected a non-empty list under 'messages'"),
    Case("data", "empty-parts", _rows(_user([])), DataError, r"message 0: 'content' must be a string or a non-empty list"),
    Case("data", "content-number", _rows(_user(3)), DataError, r"sample id 'x'\) message 0: 'content' must be"),
    Case("data", "bad-role", _rows({"id": "x", "messages": [{"role": "robot", "content": "hi"}]}), DataError,
         r"role 'robot' is not one of"),
    Case("data", "message-not-object", _rows({"id": "x", "messages": ["hi"]}), DataError,
         r"message 0: expected an object with 'role' and 'content'"),
    Case("data", "audio-part", _rows(_user([{"type": "audio", "audio": "a.wav"}])), DataError,
         r"part 0: content part type 'audio' is not one of"),
    Case("data", "part-not-object", _rows(_user(["hi"])), DataError, r"part 0: content part must be an object with a 'type'"),
    Case("data", "text-not-string", _rows(_user([{"type": "text", "text": 5}])), DataError, r"text part needs a string 'text'"),
    Case("data", "image-without-path", _rows(_user([{"type": "image"}])), DataError, r"image part needs a file path"),
    Case("data", "no-user-message", _rows({"id": "x", "messages": [{"role": "assistant", "content": "a"}]}), DataError,
         r"at least one 'user' message"),
    Case("data", "row-is-list", _rows([1, 2]), DataError, r"d\.jsonl:1: each row must be a JSON object, got list"),
    Case("data", "id-is-object", _rows({"id": {"a": 1}, "messages": []}), DataError, r"d\.jsonl:1: 'id' must be a string or an integer"),
    Case("data", "not-utf8", _rows(_text_row("a"), b'{"id": "b", "messages": "caf\xe9"}\n'), DataError,
         r"d\.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 29\)"),
    Case("data", "nested-too-deep", _rows("[" * 100_000 + "]" * 100_000), DataError, r"d\.jsonl:1: invalid JSON \(nested too deeply\)"),
    Case("data", "huge-integer", _rows('{"id": ' + "9" * 5000 + "}"), DataError, r"d\.jsonl:1: invalid JSON \(.*4300 digits"),
    Case("data", "duplicate-id", _rows(_text_row("a"), _text_row("b"), _text_row("a")), DataError,
         r"d\.jsonl:3 \(sample id 'a'\): duplicate sample id, first used at .*d\.jsonl:1"),
    Case("data", "empty-file", _rows("", ""), DataError, r"d\.jsonl contains no samples"),
    Case("data", "missing-file", lambda ctx: load_dataset(ctx.data / "nope.jsonl"), DataError, r"nope\.jsonl does not exist"),
    Case("data", "bad-actions", _rows({**_text_row("v"), "actions": [[]]}), DataError, r"sample id 'v'.*'actions' must be"),
    Case("data", "weight-nan", _rows('{"id": "w", "weight": NaN, "messages": [{"role": "user", "content": "hi"}]}'),
         DataError, r"sample id 'w'\): 'weight' must be a finite number, got nan"),
    Case("data", "token-weights-empty", _rows({**_text_row("t"), "token_weights": []}), DataError,
         r"sample id 't'\): 'token_weights' must be a non-empty list"),
    # media: contained paths, decoding
    Case("media", "dot-dot-escape", _rows(_media_row("../../outside/secret.png")), DataError,
         r"d\.jsonl:1 \(sample id 's1'\) message 0 part 0: image path '\.\./\.\./outside/secret\.png' resolves to "
         r".*outside/secret\.png, outside the data root"),
    Case("media", "absolute-outside", lambda ctx: load_jsonl(ctx.jsonl([_media_row(str(ctx.png(ctx.tmp / "a.png")))])),
         DataError, r"image path '/.*a\.png' resolves to .*, outside the data root and data.media_roots"),
    Case("media", "file-url-outside", lambda ctx: load_jsonl(ctx.jsonl([_media_row(ctx.png(ctx.tmp / "u.png").as_uri())])),
         DataError, r"image path 'file:///.*u\.png' resolves to .*u\.png, outside"),
    Case("media", "symlink-escape", lambda ctx: load_jsonl(_symlink(ctx)), DataError,
         r"image path 'link\.png' resolves to .*outside\.png, outside the data root"),
    Case("media", "video-escape", _rows(_media_row("/etc/passwd", "v", kind="video")), DataError,
         r"sample id 'v'\) message 0 part 0: video path '/etc/passwd' resolves to /etc/passwd, outside"),
    Case("media", "outside-listed-roots",
         lambda ctx: load_jsonl(ctx.jsonl([_media_row("/etc/hosts")]), media=MediaPolicy.from_config([str(ctx.tmp / "m")])),
         DataError, r"outside the data root and data.media_roots \(.*/data, .*/m\)"),
    Case("media", "http-url", _rows(_media_row("http://example.com/x.png")), DataError,
         r"image path 'http://example.com/x.png': only local files and file:// URLs are supported, not http:// URLs"),
    Case("media", "remote-file-url", _rows(_media_row("file://evil.example/x.png")), DataError,
         r"file:// URL names a remote host 'evil.example'"),
    Case("media", "nul-in-path", _rows(_media_row("a\x00.png")), DataError, r"image path 'a\\x00\.png': contains a NUL"),
    Case("media", "missing-image", _rows(_media_row("nope.png", "abc")), DataError,
         r"d\.jsonl:1 \(sample id 'abc'\): image file .*nope\.png does not exist"),
    Case("media", "image-is-folder", lambda ctx: (ctx.data / "dir.png").mkdir() or load_jsonl(ctx.jsonl([_media_row("dir.png")])),
         DataError, r"image file .*dir\.png does not exist"),
    Case("media", "corrupt-image",
         lambda ctx: (ctx.data / "bad.png").write_bytes(b"not a png") and _encode(ctx, _media_row("bad.png"), "qwen2.5-vl"),
         DataError, r"sample id 's1'.*bad\.png could not be decoded"),
    Case("media", "corrupt-video",
         lambda ctx: (ctx.data / "bad.mp4").write_bytes(b"\x00garbage") and _encode(ctx, _media_row("bad.mp4", "v", "video"),
                                                                                     "qwen2.5-vl"),
         DataError, r"sample id 'v'.*bad\.mp4 could not be decoded"),
    Case("media", "decompression-bomb", _bomb, DataError, r"sample id 's1'.*big\.png is too large to decode safely"),
    # models
    Case("models", "no-tokenizer", lambda ctx: load_model(_no_tokenizer(ctx)), ModelLoadError,
         r"model.name_or_path '.*no-tokenizer': no usable tokenizer"),
    Case("models", "no-such-folder", lambda ctx: load_model(str(ctx.tmp / "nothing")), FileNotFoundError,
         r"model.name_or_path '.*nothing': not a model folder or reachable hub id"),
    Case("models", "broken-config", lambda ctx: load_model(str(ctx.jsonl(["{"], "config.json").parent)), FileNotFoundError,
         r"model.name_or_path '.*data': not a model folder"),
    Case("models", "truncated-weights", lambda ctx: load_model(_half_weights(ctx)), ModelLoadError,
         r"model.name_or_path '.*half': cannot load the weights"),
    Case("models", "pickled-weights", lambda ctx: load_model(_pickled_weights(ctx)), ModelLoadError,
         r"'.*bin-only': cannot load the weights .*only pickled \*\.bin weights, which mmsft never loads", after=_no_pwn),
    Case("models", "image-for-text-model", lambda ctx: _encode(ctx, _media_row("x.png")), DataError,
         r"text family cannot take image/video parts"),
    Case("models", "no-target", lambda ctx: _encode(ctx, {"id": "q", "messages": [{"role": "user", "content": "hi"}]}),
         DataError, r"sample id 'q'.*final assistant message"),
    Case("models", "overlong-error", lambda ctx: _encode(ctx, _text_row("o", "word " * 60), max_length=8, overlong="error"),
         DataError, r"sample id 'o'.*exceed max_length=8"),
    # rewards
    Case("rewards", "raises", lambda ctx: _rewards("test_bad_input_boom"), RewardError,
         r"reward 'test_bad_input_boom'.*ZeroDivisionError"),
    Case("rewards", "wrong-count", lambda ctx: _rewards("test_bad_input_short"), RewardError,
         r"reward 'test_bad_input_short' returned 1 values for 2 completions"),
    Case("rewards", "nan", lambda ctx: _rewards("test_bad_input_nan"), RewardError,
         r"reward 'test_bad_input_nan' on sample 'b': value is nan"),
    Case("rewards", "not-a-number", lambda ctx: _rewards("test_bad_input_word"), RewardError,
         r"reward 'test_bad_input_word' on sample 'a': expected a float or a dict of floats, got 'high'"),
    Case("rewards", "unknown", lambda ctx: _rewards("test_bad_input_bom"), RegistryError,
         r"unknown reward 'test_bad_input_bom'.*Did you mean 'test_bad_input_boom'"),
    Case("rewards", "weights-count", _cfg("algorithm=grpo", "rl.rewards=test_bad_input_boom,test_bad_input_nan",
                                          "rl.reward_weights=1"), ConfigError,
         r"'rl.reward_weights': 1 weights for 2 rewards"),
    # checkpoints
    Case("checkpoints", "no-such-folder", lambda ctx: resolve_resume(ctx.tmp, str(ctx.tmp / "gone")), CheckpointError,
         r"train.resume='.*gone': no such folder"),
    Case("checkpoints", "no-marker", lambda ctx: resolve_resume(ctx.tmp, str(ctx.data)), CheckpointError,
         r"train.resume='.*data': .*data: incomplete checkpoint \(no COMPLETE marker"),
    Case("checkpoints", "pickle", lambda ctx: resolve_resume(ctx.tmp, str(ctx.pickle_checkpoint())), CheckpointError,
         r"step-000001/optimizer\.pt: pickle files are never loaded", after=_no_pwn),
    Case("checkpoints", "truncated-weights",
         lambda ctx: _truncate(ctx.checkpoint() / "model" / "model.safetensors") or resolve_resume(ctx.tmp / "ckrun", "auto"),
         CheckpointError, r"no intact checkpoint in .*model/model\.safetensors: \d+ bytes, expected \d+"),
    Case("checkpoints", "other-optimizer", _resume_into_other_optimizer, CheckpointError,
         r"step-000001/optimizer\.json: does not fit this run's optimizer"),
    Case("checkpoints", "state-not-json",
         lambda ctx: resolve_resume(ctx.tmp, str(_tamper(ctx, "trainer_state.json", "{"))), CheckpointError,
         r"trainer_state\.json: not valid JSON"),
    Case("checkpoints", "dangling-tensor",
         lambda ctx: restore_training_state(_tamper(ctx, "rng.json", '{"format": 1, "tensor_file": null, "tree": '
                                                                     '{"__tensor__": "t9"}}'), *_stub_optim()),
         CheckpointError, r"rng\.json: refers to tensor 't9'"),
    Case("checkpoints", "scheduler-garbage",
         lambda ctx: restore_training_state(_tamper(ctx, "scheduler.json", "[]"), *_stub_optim()), CheckpointError,
         r"scheduler\.json: not an mmsft state file"),
    # training
    Case("training", "missing-model", lambda ctx: Trainer(load_config(None, ["data.train_path=x"])), ConfigError,
         r"'model.name_or_path' is required"),
    # counted skips
    Case("data", "overlong-drop-is-counted", _overlong_drop, None, r"dropped [1-9]\d* overlong: \['long'"),
    # cli: one line on stderr, exit 2, no traceback
    Case("cli", "unknown-key", lambda ctx: ["train", "optim.lrr=3"], SystemExit,
         r"^mmsft train: error: unknown config key 'optim.lrr'. Did you mean 'lr'\?$"),
    Case("cli", "bound", lambda ctx: ["train", "train.micro_batch_size=0"], SystemExit,
         r"^mmsft train: error: config key 'train.micro_batch_size': expected an integer >= 1, got 0$"),
    Case("cli", "missing-config-file", lambda ctx: ["train", str(ctx.tmp / "nope.yaml")], SystemExit,
         r"^mmsft train: error: config file .*nope\.yaml does not exist$"),
    Case("cli", "invalid-yaml", lambda ctx: ["train", str(ctx.yaml("a: [1\n"))], SystemExit,
         r"^mmsft train: error: config file .*c\.yaml is not valid YAML"),
    Case("cli", "no-model-key", lambda ctx: ["train", "data.train_path=x.jsonl"], SystemExit,
         r"^mmsft train: error: config key 'model.name_or_path' is required"),
    Case("cli", "no-tokenizer", lambda ctx: ctx.train_args(f"model.name_or_path={_no_tokenizer(ctx)}"), SystemExit,
         r"^mmsft train: error: model.name_or_path '.*no-tokenizer': no usable tokenizer"),
    Case("cli", "no-such-model", lambda ctx: ctx.train_args(f"model.name_or_path={ctx.tmp / 'nothing'}"), SystemExit,
         r"^mmsft train: error: model.name_or_path '.*nothing': not a model folder"),
    Case("cli", "pickle-checkpoint", lambda ctx: ctx.train_args(f"train.resume={ctx.pickle_checkpoint()}"), SystemExit,
         r"^mmsft train: error: train.resume=.*optimizer\.pt: pickle files are never loaded", after=_no_pwn),
    Case("cli", "missing-dataset", lambda ctx: ctx.train_args(data=ctx.tmp / "none.jsonl"), SystemExit,
         r"^mmsft train: error: dataset file .*none\.jsonl does not exist"),
    Case("cli", "media-escape", lambda ctx: ctx.train_args(data=ctx.jsonl([_media_row("../../x.png")])), SystemExit,
         r"^mmsft train: error: .*d\.jsonl:1 \(sample id 's1'\) message 0 part 0: image path '\.\./\.\./x\.png' resolves"),
    Case("cli", "eval-not-utf8",
         lambda ctx: ["eval", f"model.name_or_path={ctx.model()}", f"data.eval_path={ctx.jsonl([_text_row(), _FF])}",
                      f"train.output_dir={ctx.tmp / 'ev'}"], SystemExit,
         r"^mmsft eval: error: .*d\.jsonl:2: not valid UTF-8 \(byte 0xff at column 1\)"),
]


def _stub_optim() -> tuple[Any, Any]:
    param = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def test_the_table_covers_every_area_with_enough_cases():
    areas = {c.area for c in CASES}
    assert {"cli", "config", "data", "media", "models", "rewards", "checkpoints"} <= areas
    assert len(CASES) >= 60 and len({(c.area, c.name) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.area}-{c.name}")
def test_bad_input(case: Case, request, tmp_path, capsys):
    ctx = Ctx(request, tmp_path)
    if case.error is None:  # a counted skip: the outcome names what was skipped and how many
        assert re.search(case.match, case.run(ctx))
    elif case.area == "cli":
        capsys.readouterr()
        assert main(case.run(ctx)) == 2
        err = capsys.readouterr().err  # may also hold transformers' weight-loading progress bar
        errors = [line for line in err.splitlines() if line.startswith("mmsft")]
        assert len(errors) == 1 and err.endswith(errors[0] + "\n") and "Traceback" not in err, err
        assert re.search(case.match, errors[0]), err
    else:
        with pytest.raises(case.error) as info:
            case.run(ctx)
        message = str(info.value)
        assert re.search(case.match, message), message
        assert "\n" not in message and is_user_error(info.value), message
    if case.after is not None:
        case.after(ctx)


def test_every_listed_error_type_exists():
    import importlib

    from mmsft.errors import USER_ERRORS, one_line, register_user_error, user_error_types

    for spec in USER_ERRORS:
        module, _, name = spec.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, Exception) and cls in user_error_types(), spec

    @register_user_error
    class TaskDataError(ValueError):
        pass

    assert is_user_error(TaskDataError("x")) and is_user_error(FileNotFoundError("y"))
    assert not is_user_error(ValueError("a bug")) and not is_user_error(KeyError("a bug"))
    assert one_line(ValueError("a\n  b\n\nc")) == "a; b; c" and one_line(RuntimeError()) == "RuntimeError"


def test_cli_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ConfigError, match="micro_batch_size"):
        main(["--debug", "train", "train.micro_batch_size=0"])
    with pytest.raises(ConfigError, match="micro_batch_size"):
        main(["train", "train.micro_batch_size=0", "--debug"])


def test_media_roots_and_opt_out_admit_paths(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    Image.new("RGB", (8, 8)).save(shared / "x.png")
    data = tmp_path / "data"
    data.mkdir()
    (data / "images").symlink_to(shared)  # a symlinked folder inside the root that points out of it
    path = data / "d.jsonl"
    path.write_text(json.dumps(_media_row("images/x.png")) + "\n" + json.dumps(_media_row(f"file://{shared}/x.png", "s2")))
    with pytest.raises(DataError, match="outside the data root"):
        load_jsonl(path)
    for policy in (MediaPolicy.from_config([str(shared)]), MediaPolicy.from_config(allow_any_media_path=True)):
        samples = load_jsonl(path, media=policy)
        assert [Path(s.media("image")[0]).resolve() for s in samples] == [(shared / "x.png").resolve()] * 2
    cfg = load_config(None, [f"data.media_roots={shared},{tmp_path}", "data.allow_any_media_path=false"])
    assert cfg.data.media_roots == [str(shared), str(tmp_path)]


def test_huge_jpeg_is_decoded_at_reduced_scale(monkeypatch, tmp_path):
    from PIL import ImageFile

    from mmsft.data.media import MediaBudget, load_image

    Image.new("RGB", (4000, 3000), (10, 120, 200)).save(tmp_path / "big.jpg", quality=90)
    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def spy(self):
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    image = load_image(tmp_path / "big.jpg", "here", MediaBudget())
    assert image.size == (504, 364) and image.getpixel((10, 10))[2] > 150
    # the decoder ran at 1/4 scale (1000×750 ≥ the 504×364 target), never at 4000×3000
    assert decoded and max(w * h for w, h in decoded) == 1000 * 750


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
    assert MARKER in {p.name for p in checkpoint.iterdir()}
    assert not (tmp_path / "run" / "final").exists()
    reloaded = load_model(str(checkpoint / "model"))
    assert all(torch.isfinite(p).all() for p in reloaded.model.parameters())
