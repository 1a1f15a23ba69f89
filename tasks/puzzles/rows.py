"""Writing SFT examples as JSONL rows plus PNG files (image paths relative to the JSONL file).

Row schema read by the trainer::

    {"id": str,
     "messages": [{"role": "user", "content": [{"type": "image", "image": "images/train-000001.png"},
                                               {"type": "text", "text": "..."}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "<target>"}]}],
     "answer": <verifier-ready answer or null>, "meta": {...}}

Text-only rows omit the image part; the last assistant message is the training target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SPLITS = ("train", "val", "test")


def make_row(row_id: str, prompt: str, target: str, answer: Any, meta: dict[str, Any],
             image_path: str | None = None) -> dict[str, Any]:
    """One example in the trainer's schema."""
    user: list[dict[str, Any]] = []
    if image_path is not None:
        user.append({"type": "image", "image": image_path})
    user.append({"type": "text", "text": prompt})
    return {"id": row_id,
            "messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": [{"type": "text", "text": target}]}],
            "answer": answer, "meta": meta}


class RowWriter:
    """Streams rows to ``<out>/<split>.jsonl`` and images to ``<out>/images/<split>-NNNNNN.png``."""

    def __init__(self, out_dir: str | Path, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split={split!r}; expected one of {SPLITS}")
        self.out_dir = Path(out_dir)
        self.split = split
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / f"{split}.jsonl"
        self._fh = self.path.open("w", encoding="utf-8")
        self.count = 0
        self.images = 0

    def add(self, row_id: str, prompt: str, target: str, answer: Any, meta: dict[str, Any],
            image: np.ndarray | None = None) -> dict[str, Any]:
        image_path = None
        if image is not None:
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"image must be HxWx3 uint8, got shape {image.shape} dtype {image.dtype}")
            (self.out_dir / "images").mkdir(exist_ok=True)
            image_path = f"images/{self.split}-{self.count + 1:06d}.png"
            Image.fromarray(image).save(self.out_dir / image_path, compress_level=1)
            self.images += 1
        row = make_row(row_id, prompt, target, answer, meta, image_path)
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1
        return row

    def close(self) -> Path:
        self._fh.close()
        return self.path

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_manifest(out_dir: str | Path, world: str, split: str, info: dict[str, Any]) -> Path:
    """Merge this split's build info into ``<out>/manifest.json``."""
    path = Path(out_dir) / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"splits": {}}
    manifest.setdefault("splits", {})[split] = {"world": world, **info}
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path


def check_out_dir(out_dir: str | Path, world: str) -> None:
    """Refuse to mix worlds in one output folder (splits of one world share ``images/`` and the manifest)."""
    path = Path(out_dir) / "manifest.json"
    if not path.exists():
        return
    splits = json.loads(path.read_text()).get("splits", {})
    others = sorted({info.get("world") for info in splits.values()} - {world})
    if others:
        raise ValueError(f"--out {str(out_dir)!r} already holds a dataset of world {others[0]!r}; use one folder "
                         f"per world (building {world!r})")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file; raises naming the file and line on malformed JSON."""
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n} is not valid JSON ({exc.msg})") from exc
    return rows
