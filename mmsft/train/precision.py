"""Which mixed precision ``train.mixed_precision=auto`` runs in.

bf16 autocast (Micikevicius et al., "Mixed Precision Training", arXiv 1710.03740; bf16 as in Kalamkar et al.,
arXiv 1905.12322) keeps fp32 master weights and optimizer state and runs matmuls with bf16 inputs and fp32
accumulation. ``auto`` chooses it where the hardware makes it pay:

* a CUDA GPU with bf16 support → ``bf16``;
* a CPU whose flags list ``amx_bf16`` or ``avx512_bf16`` → ``bf16`` when the model's (text) hidden size is at least
  :data:`BF16_MIN_HIDDEN`. Below that the casts cost more than the bf16 matmuls save: measured on one thread of a
  Sapphire-Rapids-class core (AMX), forward + backward of a Qwen2 stack on 4 × 256 tokens ran 0.85× as fast under
  bf16 autocast at hidden 64, 1.26× at 128, 1.81× at 256 and 1.99× at 512 (docs/benchmarks.md, "bf16 on CPU");
* otherwise (no bf16 instructions: bf16 is emulated and slower) → ``no``.

Explicit ``no`` / ``bf16`` / ``fp16`` are passed through unchanged. Autocast on CPU is deterministic, so a resumed run
is bit-identical to an uninterrupted one in bf16 as in fp32 (tests/test_speed_precision.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

BF16_MIN_HIDDEN = 128


def cpu_bf16_flags() -> list[str]:
    """The bf16 instruction sets (``amx_bf16``, ``avx512_bf16``) this CPU's flags list (empty off Linux)."""
    from mmsft.report.environment import cpu_info

    return list(cpu_info()["bf16_flags"])


def model_hidden_size(name_or_path: str) -> int | None:
    """The (text) hidden size from a model folder's ``config.json`` (None when there is no readable local config:
    a hub id is resolved later by the loader; ``auto`` then stays in fp32 on CPU)."""
    path = Path(name_or_path) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    for owner in (config, config.get("text_config") or {}):
        value = owner.get("hidden_size") if isinstance(owner, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def resolve_mixed_precision(choice: str, hidden_size: int | None, *, cuda_bf16: bool | None = None,
                            cpu_flags: Sequence[str] | None = None) -> str:
    """The accelerate ``mixed_precision`` for a config value (see the module docstring).

    ``cuda_bf16`` / ``cpu_flags`` default to what this machine has; tests pass them explicitly.
    """
    if choice != "auto":
        return choice
    if cuda_bf16 is None:
        import torch

        cuda_bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if cuda_bf16:
        return "bf16"
    flags = cpu_bf16_flags() if cpu_flags is None else list(cpu_flags)
    if flags and hidden_size is not None and hidden_size >= BF16_MIN_HIDDEN:
        return "bf16"
    return "no"


def allow_precision_change(precision: str) -> None:
    """Let a new ``Accelerator`` in this process take ``precision`` when an earlier one (a previous pipeline stage
    or run in the same process) set another: accelerate keeps the precision in a process-wide singleton and refuses a
    change. Only single-process runs are reset; a distributed launch keeps accelerate's check."""
    from accelerate.state import AcceleratorState, PartialState

    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision") != precision and PartialState().num_processes == 1:
        AcceleratorState._reset_state()
