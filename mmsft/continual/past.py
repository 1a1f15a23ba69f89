"""Task-vector arithmetic on model folders for PaST skill injection (Tang et al., "Knowledge is Not Enough:
Injecting RL Skills for Continual Adaptation", arXiv 2601.11258): θ = θ_target + λ·(θ_RL − θ_SFT).

Pure safetensors arithmetic, pickle-free: the three folders must hold the same tensor names and shapes (the same
architecture); floating-point tensors are combined in float32 and cast back to the target's dtype, other tensors
(integer buffers) are the target's. The output keeps the target's file layout (shards, index, safetensors metadata)
and every other file of the target folder (config, tokenizer, processor), and is written through a temporary folder
and one rename, so a killed write leaves no partial model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mmsft.errors import register_user_error


@register_user_error
class TaskVectorError(ValueError):
    """Model folders that cannot be combined (different tensors or shapes, no safetensors weights)."""


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise TaskVectorError(f"{folder}: no *.safetensors weights (PaST needs safetensors model folders)")
    return files


def load_state(folder: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a model folder's safetensors files."""
    state: dict[str, torch.Tensor] = {}
    for path in _weight_files(Path(folder)):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                state[key] = handle.get_tensor(key)
    return state


def task_vector(plus: str | Path, minus: str | Path) -> dict[str, torch.Tensor]:
    """``θ_plus − θ_minus`` (float32) for every floating-point tensor; errors name a missing or reshaped tensor."""
    a, b = load_state(plus), load_state(minus)
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))[:5]
        raise TaskVectorError(f"{plus} and {minus} hold different tensors (e.g. {only}); a task vector needs the "
                              "same architecture")
    vector = {}
    for key, value in a.items():
        if value.shape != b[key].shape:
            raise TaskVectorError(f"tensor {key!r}: shape {tuple(value.shape)} in {plus} but {tuple(b[key].shape)} "
                                  f"in {minus}")
        if value.is_floating_point():
            vector[key] = value.float() - b[key].float()
    return vector


def add_vector(target: str | Path, vector: dict[str, torch.Tensor], scale: float, out: str | Path) -> Path:
    """Write ``θ_target + scale·vector`` as a model folder ``out`` (see the module doc); returns ``out``."""
    target, out = Path(target), Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    seen: set[str] = set()
    for path in _weight_files(target):
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
            for key in handle.keys():
                value = handle.get_tensor(key)
                seen.add(key)
                if key in vector:
                    if vector[key].shape != value.shape:
                        raise TaskVectorError(f"tensor {key!r}: shape {tuple(value.shape)} in {target} but the "
                                              f"vector has {tuple(vector[key].shape)}")
                    value = (value.float() + scale * vector[key]).to(value.dtype)
                tensors[key] = value.contiguous()
        save_file(tensors, str(tmp / path.name), metadata=metadata)
    missing = sorted(set(vector) - seen)
    if missing:
        raise TaskVectorError(f"{target} lacks tensors of the vector (e.g. {missing[:5]})")
    for item in target.iterdir():
        if item.suffix != ".safetensors" and item.is_file():
            shutil.copy2(item, tmp / item.name)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def inject_skill(target: str | Path, rl: str | Path, sft: str | Path, scale: float, out: str | Path) -> Path:
    """PaST: ``out`` = target + scale·(rl − sft)."""
    return add_vector(target, task_vector(rl, sft), scale, out)


__all__ = ["TaskVectorError", "add_vector", "inject_skill", "load_state", "task_vector"]
