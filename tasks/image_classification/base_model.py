"""The embedded tiny Qwen2.5-VL base models of the shapes world.

* ``assets/shapes_base/``: pretrained on shapes-world captions and attribute questions
  (``scripts/pretrain_shapes_base.py``);
* ``assets/thinking_base/``: ``shapes_base`` after further pretraining on shapes-world images and video-world clips
  in both answer-only and think-then-answer formats — the stand-in for an instruct VLM that the CLS-RL study
  (Li et al., arXiv 2503.16188) and the VideoRFT study (arXiv 2505.12434) start from
  (``scripts/pretrain_thinking_base.py``).

Both are shipped and rebuilt reproducibly by their script (seeded, minutes on a CPU) when the folder is missing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = REPO_ROOT / "assets" / "shapes_base"
SCRIPT = REPO_ROOT / "scripts" / "pretrain_shapes_base.py"
THINKING_PATH = REPO_ROOT / "assets" / "thinking_base"
THINKING_SCRIPT = REPO_ROOT / "scripts" / "pretrain_thinking_base.py"
REQUIRED_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json")


def is_complete(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a loadable model folder (config, weights and tokenizer)."""
    return all((Path(path) / name).is_file() for name in REQUIRED_FILES)


def ensure_shapes_base(path: str | os.PathLike[str] | None = None, seed: int = 0) -> Path:
    """Return the base-model folder (default ``assets/shapes_base``), pretraining it first if it is missing.

    The rebuild calls ``pretrain_shapes_base(path, seed=seed)`` of ``scripts/pretrain_shapes_base.py`` with its
    default steps; an existing complete folder is returned untouched.
    """
    target = Path(path) if path is not None else DEFAULT_PATH
    if is_complete(target):
        return target
    _run_script(SCRIPT, "pretrain_shapes_base", target, seed)
    return target


def ensure_thinking_base(path: str | os.PathLike[str] | None = None, seed: int = 0) -> Path:
    """Return the thinking-capable base folder (default ``assets/thinking_base``), building it first if missing.

    The rebuild calls ``pretrain_thinking_base(path, seed=seed)`` of ``scripts/pretrain_thinking_base.py`` (which
    starts from :func:`ensure_shapes_base`); an existing complete folder is returned untouched.
    """
    target = Path(path) if path is not None else THINKING_PATH
    if is_complete(target):
        return target
    _run_script(THINKING_SCRIPT, "pretrain_thinking_base", target, seed)
    return target


def _run_script(script: Path, function: str, target: Path, seed: int) -> None:
    if not script.is_file():
        raise FileNotFoundError(f"base model missing at {target} and the script that builds it ({script}) is not "
                                f"available; run it from a source checkout of mmsft")
    spec = importlib.util.spec_from_file_location(f"_mmsft_{function}", script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    getattr(module, function)(target, seed=seed)
    if not is_complete(target):
        raise RuntimeError(f"{script.name} finished but {target} lacks one of {REQUIRED_FILES}")


__all__ = ["DEFAULT_PATH", "THINKING_PATH", "ensure_shapes_base", "ensure_thinking_base", "is_complete"]
