"""What a run ran on: library versions, CPU / GPU, precision and the command line, recorded in
``<run>/environment.json`` when training starts (the report and the model card read it back; ``mmsft doctor`` uses
the CPU probe too). Standard library only, plus torch and accelerate when they are already imported."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ENVIRONMENT_FILE = "environment.json"
PACKAGES = ("mmsft", "torch", "transformers", "accelerate", "peft", "datasets", "numpy", "torchvision", "decord", "av",
            "qwen-vl-utils", "mujoco", "robosuite", "wandb", "mlflow-skinny", "mlflow", "trackio")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_info(cpuinfo: str = "/proc/cpuinfo") -> dict[str, Any]:
    """CPU model name, logical cores and which bf16 instruction sets (AMX, AVX-512 BF16) the flags list."""
    model, flags = "", set()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return {"model": model, "cores": os.cpu_count(), "bf16_flags": [f for f in BF16_FLAGS if f in flags]}


def command_line(argv: list[str] | None = None) -> str | None:
    """The ``mmsft ...`` command this process runs (None when it was not started from the ``mmsft`` CLI)."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return None
    first = Path(argv[0])
    if first.name == "mmsft" or first.as_posix().endswith("mmsft/cli.py"):
        return shlex.join(["mmsft", *argv[1:]])
    return None


def _device() -> dict[str, Any]:
    """Device, process count and mixed precision from accelerate (when an Accelerator exists) and torch."""
    out: dict[str, Any] = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        cuda = torch.cuda.is_available()
        out["cuda"] = cuda
        if cuda:
            out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            out["cuda_version"] = torch.version.cuda
    state = sys.modules.get("accelerate.state")
    if state is not None and state.is_initialized():
        accelerator = state.AcceleratorState()
        out.update({"device": str(accelerator.device), "num_processes": accelerator.num_processes,
                    "mixed_precision": str(accelerator.mixed_precision),
                    "distributed_type": str(accelerator.distributed_type)})
    elif "device" not in out:
        out["device"] = "cuda" if out.get("cuda") else "cpu"
    return out


def capture(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The environment of this process (cheap: nothing new is imported)."""
    model = (config or {}).get("model", {}) if isinstance(config, dict) else {}
    train = (config or {}).get("train", {}) if isinstance(config, dict) else {}
    return {
        "recorded": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: v for name in PACKAGES if (v := package_version(name)) is not None},
        "cpu": cpu_info(),
        **_device(),
        "dtype": model.get("dtype"),
        "mixed_precision_setting": train.get("mixed_precision"),
        "command": command_line(),
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
    }


def write_environment(run_dir: Path, config: dict[str, Any] | None = None) -> Path:
    """Write ``<run>/environment.json`` (atomically)."""
    path = Path(run_dir) / ENVIRONMENT_FILE
    tmp = path.with_name(f".{ENVIRONMENT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(capture(config), indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_environment(run_dir: Path) -> dict[str, Any] | None:
    """``<run>/environment.json`` as a mapping, or None when absent or unreadable."""
    try:
        data = json.loads((Path(run_dir) / ENVIRONMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
