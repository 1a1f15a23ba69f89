"""Checkpoints: no pickle anywhere, a verified completion marker, fallback past damage, atomic writes, clean resume."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mmsft.config import load_config
from mmsft.train import checkpoint as ckpt
from mmsft.train.checkpoint import (MARKER, CheckpointError, clean_stale, export_final, list_checkpoints,
                                    resolve_resume, restore_training_state, save_checkpoint, verify_checkpoint,
                                    write_marker)
from mmsft.train.logging import trim_metrics
from mmsft.train.state_files import StateFileError, load_state, save_state
from mmsft.train.trainer import Trainer


def _config(model: Path, data: Path, out: Path, *extra: str):
    return load_config(None, [f"model.name_or_path={model}", f"data.train_path={data}", f"train.output_dir={out}",
                              "train.micro_batch_size=2", "train.grad_accum=2", "optim.lr=5e-3",
                              "optim.warmup_ratio=0.3", "train.progress=false", "train.tensorboard=false",
                              "train.save_total_limit=0", *extra])


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


class _Crash(Trainer):
    """Stops (like kill -9 would, minus the exit) when it reaches ``crash_at``."""

    crash_at = 3

    def _step(self, step):
        if step == self.crash_at:
            raise KeyboardInterrupt
        return super()._step(step)


@pytest.fixture(scope="module")
def trained(tiny_models, text_dataset, tmp_path_factory) -> dict[str, Path]:
    """A 4-step run stopped after step 3 with a checkpoint after every step, and the uninterrupted run."""
    root = tmp_path_factory.mktemp("ckpt")
    with pytest.raises(KeyboardInterrupt):
        _Crash(_config(tiny_models["text"], text_dataset, root / "run", "train.max_steps=4", "train.save_steps=1",
                       "train.resume=never")).train()
    Trainer(_config(tiny_models["text"], text_dataset, root / "straight", "train.max_steps=4",
                    "train.resume=never")).train()
    return {"run": root / "run", "straight": root / "straight"}


def _copy_run(trained: dict[str, Path], tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    return run


def _step(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:06d}"


# ------------------------------------------------------------------------------------------------ state files
def test_state_files_round_trip_exactly(tmp_path):
    tree = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(3, 2)}, 7: {}},
            "param_groups": [{"lr": 0.1 + 0.2, "betas": (0.9, 0.999), "eps": 1e-308, "params": [0, 7], "name": None}],
            "python": random.getstate(), "numpy": np.random.get_state(), "bf16": torch.randn(4).to(torch.bfloat16),
            "bytes": torch.get_rng_state(), "flag": True}
    written = save_state(tmp_path, "s", tree)
    assert sorted(p.name for p in written) == ["s.json", "s.safetensors"]
    back = load_state(tmp_path, "s")
    assert set(back["state"]) == {0, 7} and back["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["param_groups"][0]["lr"] == 0.1 + 0.2 and back["param_groups"][0]["eps"] == 1e-308
    assert torch.equal(back["state"][0]["exp_avg"], tree["state"][0]["exp_avg"])
    assert back["bf16"].dtype == torch.bfloat16 and torch.equal(back["bf16"], tree["bf16"])
    assert back["python"] == tree["python"] and back["flag"] is True
    assert back["numpy"][0] == "MT19937" and np.array_equal(back["numpy"][1], tree["numpy"][1])
    assert back["numpy"][1].dtype == tree["numpy"][1].dtype
    with pytest.raises(TypeError, match="cannot be stored without pickle"):
        save_state(tmp_path, "bad", {"fn": lambda: 0})


@pytest.mark.parametrize("doc,match", [
    ("{not json", r"s\.json: not valid JSON"),
    ('{"format": 1, "tensor_file": null, "tree": {"__tensor__": "t0"}}', r"refers to tensor 't0'"),
    ('{"format": 1, "tensor_file": null, "tree": {"__ndarray__": "|O", "shape": [1], "data": [1]}}', r"malformed array"),
    ('{"format": 1, "tensor_file": "../x.safetensors", "tree": {}}', r"tensor_file must be s\.safetensors"),
    ('{"format": 1, "tensor_file": "s.safetensors", "tree": {}}', r"s\.safetensors: file is missing"),
    ('[1, 2]', r"not an mmsft state file"),
])
def test_state_files_reject_malformed(tmp_path, doc, match):
    (tmp_path / "s.json").write_text(doc)
    with pytest.raises(StateFileError, match=match):
        load_state(tmp_path, "s")


def test_rng_state_restores_every_generator(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_state(tmp_path, "rng", ckpt.rng_state())
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.set_rng_state(load_state(tmp_path, "rng"))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    with pytest.raises(CheckpointError, match="rng state: not a valid RNG state"):
        ckpt.set_rng_state({"python": [3, [1, 2], None], "numpy": ("MT19937",), "torch": torch.zeros(3)})


# ------------------------------------------------------------------------------------------------ format
def test_checkpoint_holds_only_safetensors_and_json_with_a_manifest(trained):
    folder = _step(trained["run"], 3)
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert not [f for f in files if f.endswith((".pt", ".bin", ".pkl", ".pth"))]
    assert {"optimizer.json", "optimizer.safetensors", "scheduler.json", "rng.json", "rng.safetensors",
            "trainer_state.json", MARKER, "model/model.safetensors"} <= files
    manifest = json.loads((folder / MARKER).read_text())
    assert manifest["step"] == 3 and set(manifest["files"]) == files - {MARKER}
    assert verify_checkpoint(folder)["step"] == 3
    assert list_checkpoints(trained["run"], verified=True) == [_step(trained["run"], s) for s in (1, 2, 3)]
    assert not list((trained["run"] / "checkpoints").glob(".*")) and not list(trained["run"].glob(".tmp-*"))


class _Payload:
    """Unpickling this creates ``marker`` — proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("layout", ["legacy", "added", "forged-manifest"])
def test_malicious_pickle_is_never_loaded(trained, tiny_models, text_dataset, tmp_path, layout):
    run = _copy_run(trained, tmp_path)
    marker = tmp_path / "pwned"
    folder = _step(run, 2)
    payload = pickle.dumps(_Payload(marker))
    if layout == "legacy":  # the pre-safetensors layout: pickled optimizer/scheduler/RNG next to trainer_state.json
        for name in ("optimizer.json", "optimizer.safetensors", "scheduler.json", "rng.json", "rng.safetensors", MARKER):
            (folder / name).unlink()
        for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):
            (folder / name).write_bytes(payload)
    else:
        (folder / "optimizer.pt").write_bytes(payload)
        if layout == "forged-manifest":
            write_marker(folder, 2)
    cfg = _config(tiny_models["text"], text_dataset, tmp_path / "out", "train.max_steps=4", f"train.resume={folder}")
    with pytest.raises(CheckpointError) as info:
        Trainer(cfg).train()
    message = str(info.value)
    assert f"{folder / 'optimizer.pt'}: pickle files are never loaded" in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("damage,match", [
    ("truncate-weights", r"model/model\.safetensors: \d+ bytes, expected \d+ \(truncated"),
    ("empty-optimizer", r"optimizer\.safetensors: 0 bytes, expected"),
    ("broken-state-json", r"trainer_state\.json: sha256 differs"),
    ("flipped-byte", r"optimizer\.safetensors: sha256 differs"),
    ("no-marker", r"incomplete checkpoint \(no COMPLETE marker"),
    ("extra-file", r"model/extra\.safetensors: not listed in COMPLETE"),
    ("missing-file", r"rng\.json: listed in COMPLETE but missing"),
    ("broken-marker", r"COMPLETE: unreadable completion marker"),
])
def test_damaged_newest_checkpoint_falls_back_with_a_warning(trained, tmp_path, capsys, damage, match):
    run = _copy_run(trained, tmp_path)
    newest = _step(run, 3)
    if damage == "truncate-weights":
        weights = newest / "model" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "empty-optimizer":
        (newest / "optimizer.safetensors").write_bytes(b"")
    elif damage == "broken-state-json":
        state = newest / "trainer_state.json"
        state.write_text(state.read_text()[:-3] + "}}}")
    elif damage == "flipped-byte":
        data = bytearray((newest / "optimizer.safetensors").read_bytes())
        data[-1] ^= 0xFF
        (newest / "optimizer.safetensors").write_bytes(bytes(data))
    elif damage == "no-marker":
        (newest / MARKER).unlink()
    elif damage == "extra-file":
        (newest / "model" / "extra.safetensors").write_bytes(b"x")
    elif damage == "missing-file":
        (newest / "rng.json").unlink()
    else:
        (newest / MARKER).write_text("{")
    assert resolve_resume(run, "auto") == _step(run, 2)
    err = capsys.readouterr().err
    assert "mmsft: warning: skipping damaged checkpoint:" in err and str(newest) in err
    assert __import__("re").search(match, err), err
    with pytest.raises(CheckpointError, match=match):
        resolve_resume(run, str(newest))  # an explicit path never falls back


def test_every_checkpoint_damaged_is_an_error_naming_them(trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    for step in (1, 2, 3):
        (_step(run, step) / MARKER).unlink()
    with pytest.raises(CheckpointError, match=r"no intact checkpoint in .*step-000003: incomplete.*step-000001"):
        resolve_resume(run, "auto")
    with pytest.raises(CheckpointError, match=r"train.resume='/nonexistent': no such folder"):
        resolve_resume(run, "/nonexistent")
    shutil.rmtree(run / "checkpoints")
    assert resolve_resume(run, "auto") is None and resolve_resume(run, "never") is None


def test_step_folder_names_and_negative_steps(trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    (run / "checkpoints" / "step--00005").mkdir()  # what max_steps=-5 used to write
    (run / "checkpoints" / "step-abc").mkdir()
    assert resolve_resume(run, "auto") == _step(run, 3)
    with pytest.raises(CheckpointError, match="step must be >= 0"):
        save_checkpoint(run, -5, None, None, None, None, {})


# ------------------------------------------------------------------------------------------------ resume end to end
def test_resume_past_a_damaged_checkpoint_is_bit_identical(trained, tiny_models, text_dataset, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    (run / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text() + '{"step": 4, "train/lo')  # torn line
    weights = _step(run, 3) / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    (run / "checkpoints" / ".tmp-step-000004-99999" / "model").mkdir(parents=True)  # a write cut short
    (run / ".tmp-final-99999").mkdir()
    result = Trainer(_config(tiny_models["text"], text_dataset, run, "train.max_steps=4", "train.save_steps=1",
                             "train.resume=auto")).train()
    assert result.steps == 4
    assert f"skipping damaged checkpoint: {weights}" in capsys.readouterr().err
    _assert_same_weights(trained["straight"] / "final", run / "final")
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert verify_checkpoint(_step(run, 3))["step"] == 3  # re-saved over the damaged one
    assert not list((run / "checkpoints").glob(".*")) and not list(run.glob(".tmp-*"))


def test_crash_inside_a_checkpoint_write_resumes_bit_identical(trained, tiny_models, text_dataset, tmp_path,
                                                              monkeypatch):
    run = tmp_path / "run"
    real_marker = ckpt.write_marker

    def dying_marker(folder, step):
        if step == 3:
            raise KeyboardInterrupt  # everything but the marker is on disk
        real_marker(folder, step)

    monkeypatch.setattr(ckpt, "write_marker", dying_marker)
    cfg = _config(tiny_models["text"], text_dataset, run, "train.max_steps=4", "train.save_steps=1",
                  "train.resume=auto")
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg).train()
    assert [p.name for p in list_checkpoints(run)] == ["step-000001", "step-000002"]
    assert list((run / "checkpoints").glob(".tmp-step-000003-*"))
    monkeypatch.setattr(ckpt, "write_marker", real_marker)
    Trainer(cfg).train()
    _assert_same_weights(trained["straight"] / "final", run / "final")
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


# ------------------------------------------------------------------------------------------------ atomic writes
class _Model:
    def __init__(self, value: float, fail: bool = False) -> None:
        self.weight, self.fail = torch.full((4,), value), fail

    def save_pretrained(self, folder, safe_serialization=True):
        Path(folder).mkdir(parents=True, exist_ok=True)
        save_file({"w": self.weight}, str(Path(folder) / "model.safetensors"))
        if self.fail:
            raise KeyboardInterrupt


def _optim() -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    param = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    param.sum().backward()
    optimizer.step()
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def test_resaving_a_step_never_loses_it(tmp_path, monkeypatch):
    optimizer, scheduler = _optim()
    save_checkpoint(tmp_path, 2, _Model(1.0), None, optimizer, scheduler, {"producer": {}})
    calls = {"n": 0}
    real_replace = os.replace

    def crash_on_second(src, dst):  # the swap: old → aside (1st), new → place (2nd)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, _Model(2.0), None, optimizer, scheduler, {"producer": {}})
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    assert not _step(tmp_path, 2).exists()
    done = clean_stale(tmp_path)
    assert any(d.startswith("restored") for d in done) and any(".tmp-step-000002" in d for d in done)
    assert verify_checkpoint(_step(tmp_path, 2))["step"] == 2
    assert torch.equal(_weights(_step(tmp_path, 2) / "model")["w"], torch.full((4,), 1.0))
    save_checkpoint(tmp_path, 2, _Model(3.0), None, optimizer, scheduler, {"producer": {}})  # a full re-save swaps
    assert torch.equal(_weights(_step(tmp_path, 2) / "model")["w"], torch.full((4,), 3.0))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000002"]


def test_final_is_replaced_only_when_complete(tmp_path):
    export_final(tmp_path, _Model(1.0), None)
    with pytest.raises(KeyboardInterrupt):
        export_final(tmp_path, _Model(2.0, fail=True), None)
    assert torch.equal(_weights(tmp_path / "final")["w"], torch.full((4,), 1.0))
    assert len(list(tmp_path.glob(".tmp-final-*"))) == 1  # the interrupted write, left aside
    done = clean_stale(tmp_path)
    assert len(done) == 1 and ".tmp-final-" in done[0] and not list(tmp_path.glob(".tmp-*"))
    export_final(tmp_path, _Model(2.0), None)
    assert torch.equal(_weights(tmp_path / "final")["w"], torch.full((4,), 2.0))


def test_keep_limit_prunes_older_checkpoints_only(tmp_path):
    optimizer, scheduler = _optim()
    (tmp_path / "checkpoints" / "step-000009").mkdir(parents=True)  # from a timeline being redone: left alone
    for step in range(1, 5):
        save_checkpoint(tmp_path, step, _Model(step), None, optimizer, scheduler, {"producer": {}}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-000003", "step-000004", "step-000009"]


def test_restore_into_another_optimizer_names_the_file(tmp_path):
    optimizer, scheduler = _optim()
    folder = save_checkpoint(tmp_path, 1, _Model(1.0), None, optimizer, scheduler, {"producer": {}})
    other = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))])
    with pytest.raises(CheckpointError, match=r"optimizer\.json: does not fit this run's optimizer"):
        restore_training_state(folder, other, torch.optim.lr_scheduler.LambdaLR(other, lambda s: 1.0))
    state = restore_training_state(folder, *_optim())
    assert state == {"step": 1, "producer": {}}


def test_trim_metrics_drops_redone_steps_and_torn_lines(tmp_path):
    lines = [json.dumps({"step": s, "train/loss": 1.0 / s}) for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 6, "tr')
    assert trim_metrics(tmp_path, 3) == 3
    assert [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert trim_metrics(tmp_path, 3) == 0 and trim_metrics(tmp_path / "missing", 0) == 0
