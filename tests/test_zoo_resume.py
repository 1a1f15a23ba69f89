"""Resume of zoo objectives with state outside the model: CurioSFT's lagged self-teacher (arXiv 2602.02244) is part of
every checkpoint (pickle-free), so a run interrupted between two teacher syncs and resumed ends bit-identical to an
uninterrupted one — full fine-tuning and LoRA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmsft.train import trainer as trainer_module
from mmsft.train.checkpoint import CheckpointError
from mmsft.train.trainer import Trainer
from tests.test_trainer import _config, _weights

COMMON = ["algorithm=curio_sft", "objective.args.sync_every=2", "train.micro_batch_size=2", "train.grad_accum=2",
          "optim.lr=5e-3", "optim.max_grad_norm=1.0", "train.max_steps=6"]


class _Crash(Trainer):
    def _step(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return super()._step(step)


def _split_run(model: Path, data: Path, out: Path, *extra: str) -> Path:
    with pytest.raises(KeyboardInterrupt):
        _Crash(_config(model, data, out, *COMMON, "train.save_steps=3", *extra)).train()
    checkpoint = out / "checkpoints" / "step-000003"
    assert (checkpoint / "scorers.safetensors").is_file() and (checkpoint / "scorers.json").is_file()
    Trainer(_config(model, data, out, *COMMON, "train.save_steps=3", "train.resume=auto", *extra)).train()
    return out / "final"


def _differing(a: dict, b: dict) -> list[str]:
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.parametrize("lora", [False, True])
def test_curio_sft_resume_is_bit_identical(tiny_models, text_dataset, tmp_path, lora):
    extra = ["lora.enabled=true", "lora.r=4"] if lora else []
    Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "straight", *COMMON, *extra)).train()
    final = _split_run(tiny_models["text"], text_dataset, tmp_path / "split", *extra)
    assert _differing(_weights(tmp_path / "straight" / "final"), _weights(final)) == []


def test_curio_sft_resume_without_the_teacher_state_would_differ(tiny_models, text_dataset, tmp_path, monkeypatch):
    """The control: with the restore skipped (the copy restarts from the resumed weights) the runs diverge, so the
    bit-identity above is owed to the saved teacher state."""
    Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "straight", *COMMON)).train()
    monkeypatch.setattr(trainer_module, "restore_scorer_states", lambda scorers, checkpoint: None)
    final = _split_run(tiny_models["text"], text_dataset, tmp_path / "split")
    assert _differing(_weights(tmp_path / "straight" / "final"), _weights(final))


def test_curio_sft_resume_refuses_a_checkpoint_without_teacher_state(tiny_models, text_dataset, tmp_path):
    """A checkpoint that lacks the teacher state (written by a run without the self-teacher) cannot seed a CurioSFT
    resume: the error names the file instead of silently restarting the lagged copy."""
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _Crash(_config(tiny_models["text"], text_dataset, out, *COMMON, "train.save_steps=3")).train()
    checkpoint = out / "checkpoints" / "step-000003"
    (checkpoint / "scorers.json").unlink()
    (checkpoint / "scorers.safetensors").unlink()
    from mmsft.train.checkpoint import write_marker

    write_marker(checkpoint, 3)  # a consistent checkpoint, just without the scorer state
    with pytest.raises(CheckpointError, match="scorers.json: holds no state for the teacher scorer"):
        Trainer(_config(tiny_models["text"], text_dataset, out, *COMMON, "train.resume=auto")).train()
