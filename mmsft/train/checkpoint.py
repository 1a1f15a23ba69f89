"""Atomic checkpoints: written to a temporary folder, then renamed, so a crash never leaves a half checkpoint.

Layout of ``<run>/checkpoints/step-000042/``: ``model/`` (``save_pretrained``: full weights or the LoRA adapter, plus
the processor, so it is a usable model folder), ``optimizer.pt``, ``scheduler.pt``, ``rng.pt`` and
``trainer_state.json`` (step, data position, counters).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, step: int, model: Any, processor: Any, optimizer: Any, scheduler: Any,
                    trainer_state: dict[str, Any], keep: int = 0) -> Path:
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save_pretrained(tmp / "model", safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(tmp / "model")
    action_tokenizer = trainer_state.pop("_action_tokenizer", None)
    if action_tokenizer is not None:
        action_tokenizer.save(tmp / "model")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / STATE_FILE).write_text(json.dumps({"step": step, **trainer_state}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    complete = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file()]
    return sorted(complete, key=lambda p: int(p.name.split("-")[1]))


def resolve_resume(run_dir: Path, resume: str) -> Path | None:
    """``auto`` → latest complete checkpoint or None; ``never`` → None; otherwise the given path (must exist)."""
    if resume == "never":
        return None
    if resume == "auto":
        found = list_checkpoints(run_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"train.resume={resume!r}: not a complete checkpoint (no {STATE_FILE})")
    return path


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE_FILE).read_text())
