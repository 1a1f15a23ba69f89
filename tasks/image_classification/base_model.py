"""The shapes-world *base* model: a tiny Qwen2.5-VL pretrained on shapes-world captions and attribute questions.

CLS-RL (Li et al., arXiv 2503.16188) fine-tunes a pretrained VLM; the embedded study starts from this model,
shipped in ``assets/shapes_base/`` and rebuilt reproducibly by ``scripts/pretrain_shapes_base.py`` (seeded,
a few minutes on a CPU) when the folder is missing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = REPO_ROOT / "assets" / "shapes_base"
SCRIPT = REPO_ROOT / "scripts" / "pretrain_shapes_base.py"
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
    if not SCRIPT.is_file():
        raise FileNotFoundError(f"shapes-world base model missing at {target} and the script that builds it "
                                f"({SCRIPT}) is not available; run it from a source checkout of mmsft")
    spec = importlib.util.spec_from_file_location("_mmsft_pretrain_shapes_base", SCRIPT)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.pretrain_shapes_base(target, seed=seed)
    if not is_complete(target):
        raise RuntimeError(f"pretraining finished but {target} lacks one of {REQUIRED_FILES}")
    return target


__all__ = ["DEFAULT_PATH", "ensure_shapes_base", "is_complete"]
