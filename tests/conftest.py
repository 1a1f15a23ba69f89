"""Shared fixtures: offline, single-threaded, tiny models built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MUJOCO_GL", "egl")

import json
from pathlib import Path

import numpy as np
import pytest

try:
    import torch

    torch.set_num_threads(1)
    # Load torch's lazily imported native pieces (dynamo → triton) before any test brings MuJoCo/EGL into this
    # process: loading triton's shared library after EGL segfaults (the LIBERO tests share one process).
    import torch._dynamo  # noqa: F401
except ImportError:  # envs-only installs can still run the env tests
    torch = None


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """family → folder of a freshly built tiny model (text, qwen2-vl, qwen2.5-vl, vla)."""
    from mmsft.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny-models")
    return {family: build_tiny(family, root / family, seed=0) for family in ("text", "qwen2-vl", "qwen2.5-vl", "vla")}


def _write_png(path: Path, colour: tuple[int, int, int], size: int = 56) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)


def _write_mp4(path: Path, frames: int = 4, size: int = 56) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.zeros((size, size, 3), np.uint8)
            image[:, : (i + 1) * size // frames] = (200, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="session")
def mm_dataset(tmp_path_factory) -> Path:
    """A small JSONL with text-only, image and video rows (media written locally)."""
    root = tmp_path_factory.mktemp("mm-data")
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 230, 20)}
    rows = []
    for i, (name, rgb) in enumerate(colours.items()):
        _write_png(root / "images" / f"{i}.png", rgb)
        rows.append({"id": f"img-{i}", "messages": [
            {"role": "user", "content": [{"type": "image", "image": f"images/{i}.png"},
                                         {"type": "text", "text": "What colour is the image?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": name}]}], "answer": name, "meta": {"kind": "image"}})
    for i in range(2):
        _write_mp4(root / "videos" / f"{i}.mp4", frames=4 + 2 * i)
        rows.append({"id": f"vid-{i}", "messages": [
            {"role": "user", "content": [{"type": "video", "video": f"videos/{i}.mp4"},
                                         {"type": "text", "text": "Which way does the colour move?"}]},
            {"role": "assistant", "content": "right"}], "answer": "right", "meta": {"kind": "video"}})
    path = root / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def text_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("text-data")
    words = ["red", "green", "blue", "yellow", "circle", "square", "triangle", "left", "right"]
    rows = [{"id": f"t{i}", "messages": [{"role": "user", "content": f"Say the word number {i % len(words)}."},
                                          {"role": "assistant", "content": " ".join(words[: 1 + i % 4])}],
             "answer": words[0]} for i in range(16)]
    path = root / "text.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def vla_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vla-data")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        _write_png(root / "images" / f"{i}.png", tuple(int(c) for c in rng.integers(0, 255, 3)))
        rows.append({"id": f"a{i}", "messages": [{"role": "user", "content": [
            {"type": "image", "image": f"images/{i}.png"}, {"type": "text", "text": "pick up the bowl"}]}],
            "actions": rng.uniform(-0.9, 0.9, size=(1, 7)).round(3).tolist()})
    path = root / "vla.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path

