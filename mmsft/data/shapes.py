"""Shapes world: a procedural image + video question-answering set a tiny VLM can learn in minutes.

Images show one or a few flat shapes on a plain background; clips show one shape moving left, right, up or down.
Every question has a one-word answer from a small closed set (colour, shape, count, direction), so accuracy is
exact match and the tiny tokenizer (:mod:`mmsft.models.tiny_tokenizer`) writes each answer as a single token.

:func:`generate_shapes_qa` writes ``train.jsonl`` and ``eval.jsonl`` in the schema of :mod:`mmsft.data.schema`
(media paths relative to the JSONL file), PNG images under ``images/`` and H.264 MP4 clips (yuv420p, written with
PyAV) under ``videos/``. Generation is deterministic given the seed; train and eval use separate random streams
and no eval scene repeats a train scene. Dependencies: numpy, Pillow and PyAV (imported when writing videos).
"""

from __future__ import annotations

import json
import os
import random
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 70, 230),
    "yellow": (235, 200, 0),
    "purple": (140, 40, 180),
    "orange": (250, 130, 0),
}
"""Answer set of colour questions and the RGB value drawn for each."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
"""Answer set of shape questions."""

COUNT_WORDS: tuple[str, ...] = ("one", "two", "three", "four")
"""Answer set of count questions (1 to 4 shapes, one per quadrant)."""

DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
"""Answer set of motion questions."""

BACKGROUND: tuple[int, int, int] = (245, 245, 245)

QUESTIONS: dict[str, tuple[str, ...]] = {
    "image-colour": ("What colour is the shape?", "Which colour is the shape in the picture?"),
    "image-shape": ("What shape is shown?", "Which shape is in the picture?"),
    "image-count": ("How many shapes are there?", "How many shapes are in the image?"),
    "video-direction": ("Which direction does the shape move?", "In which direction is the shape moving?"),
    "video-colour": ("What colour is the moving shape?", "Which colour is the shape in the video?"),
}
"""Question phrasings per kind (one is picked at random per sample)."""

ANSWERS: dict[str, tuple[str, ...]] = {
    "image-colour": tuple(COLOURS),
    "image-shape": SHAPES,
    "image-count": COUNT_WORDS,
    "video-direction": DIRECTIONS,
    "video-colour": tuple(COLOURS),
}
"""Closed answer set per kind (also stored in each row's ``meta["choices"]``)."""

KINDS: tuple[str, ...] = tuple(QUESTIONS)
"""All sample kinds; ``image-*`` kinds carry one PNG, ``video-*`` kinds one MP4."""


# ---------------------------------------------------------------------------------------------- drawing
def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        s = r * 0.85
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.75), (cx - r * 0.95, cy + r * 0.75)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def draw_shapes(
    size: int, items: Sequence[tuple[str, str, float, float, float]], background: tuple[int, int, int] = BACKGROUND
) -> np.ndarray:
    """Render ``items`` = ``(shape, colour, cx, cy, radius)`` on a plain ``size`` x ``size`` canvas (HxWx3 uint8)."""
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    for shape, colour, cx, cy, r in items:
        if colour not in COLOURS:
            raise ValueError(f"unknown colour {colour!r}; expected one of {tuple(COLOURS)}")
        fill = COLOURS[colour]
        if shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        else:
            draw.polygon(_polygon(shape, cx, cy, r), fill=fill)
    return np.asarray(image)


def write_mp4(path: str | os.PathLike[str], frames: np.ndarray, fps: float = 2.0, crf: int = 12) -> None:
    """Write ``frames`` (T x H x W x 3 uint8, even H and W) as H.264 yuv420p MP4 with PyAV, single-threaded.

    One encoder thread keeps the bytes identical from run to run and machine to machine.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames of shape (T, H, W, 3) and dtype uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"yuv420p needs even frame sides, got {frames.shape[2]}x{frames.shape[1]}")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ---------------------------------------------------------------------------------------------- scenes
def _image_scene(kind: str, rng: random.Random, size: int) -> tuple[list[tuple], str, dict[str, Any]]:
    """Items to draw, the answer and scene metadata for an ``image-*`` kind."""
    colour = rng.choice(tuple(COLOURS))
    shape = rng.choice(SHAPES)
    if kind == "image-count":
        count = rng.randint(1, len(COUNT_WORDS))
        half = size / 2
        r = round(rng.uniform(0.22, 0.3) * half, 1)
        cells = rng.sample(range(4), count)
        items = []
        for cell in sorted(cells):
            x0, y0 = (cell % 2) * half, (cell // 2) * half
            cx = round(x0 + rng.uniform(r + 1, half - r - 1), 1)
            cy = round(y0 + rng.uniform(r + 1, half - r - 1), 1)
            items.append((shape, colour, cx, cy, r))
        return items, COUNT_WORDS[count - 1], {"shape": shape, "colour": colour, "count": count}
    r = round(rng.uniform(0.18, 0.32) * size, 1)
    cx = round(rng.uniform(r + 1, size - r - 1), 1)
    cy = round(rng.uniform(r + 1, size - r - 1), 1)
    answer = colour if kind == "image-colour" else shape
    return [(shape, colour, cx, cy, r)], answer, {"shape": shape, "colour": colour, "count": 1}


def _video_scene(kind: str, rng: random.Random, size: int, frames: int) -> tuple[list[list[tuple]], str, dict]:
    """Per-frame items, the answer and scene metadata for a ``video-*`` kind."""
    colour = rng.choice(tuple(COLOURS))
    shape = rng.choice(SHAPES)
    direction = rng.choice(DIRECTIONS)
    r = round(rng.uniform(0.12, 0.18) * size, 1)
    travel = round(rng.uniform(0.4, 0.55) * (size - 2 * r - 2), 1)
    along_start = round(rng.uniform(r + 1, size - r - 1 - travel), 1)  # position along the motion axis
    across = round(rng.uniform(r + 1, size - r - 1), 1)  # fixed position on the other axis
    sign = 1.0 if direction in ("right", "down") else -1.0
    if sign < 0:
        along_start = round(along_start + travel, 1)
    clip = []
    for t in range(frames):
        along = along_start + sign * travel * t / max(frames - 1, 1)
        cx, cy = (along, across) if direction in ("left", "right") else (across, along)
        clip.append([(shape, colour, cx, cy, r)])
    answer = direction if kind == "video-direction" else colour
    return clip, answer, {"shape": shape, "colour": colour, "direction": direction}


# ---------------------------------------------------------------------------------------------- dataset
def _row(sample_id: str, media: dict[str, str], question: str, answer: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": sample_id,
        "messages": [
            {"role": "user", "content": [media, {"type": "text", "text": question}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        ],
        "answer": answer,
        "meta": meta,
    }


def _generate_split(
    split: str,
    count: int,
    rng: random.Random,
    out_dir: Path,
    first_index: int,
    kinds: Sequence[str],
    image_size: int,
    video_frames: int,
    video_fps: float,
    seen: set[str],
    exclude: set[str],
    write: Callable[[Path, np.ndarray], None],
) -> list[dict[str, Any]]:
    rows = []
    for offset in range(count):
        index = first_index + offset
        for _ in range(1000):  # draw scenes until one is not in the excluded (train) set
            kind = kinds[rng.randrange(len(kinds))]
            if kind.startswith("image-"):
                scene, answer, scene_meta = _image_scene(kind, rng, image_size)
            else:
                scene, answer, scene_meta = _video_scene(kind, rng, image_size, video_frames)
            signature = json.dumps([kind, scene], separators=(",", ":"))
            if signature not in exclude:
                break
        else:
            raise RuntimeError(f"could not draw a {split} scene that differs from every train scene")
        seen.add(signature)
        question_index = rng.randrange(len(QUESTIONS[kind]))
        if kind.startswith("image-"):
            relative = f"images/{index:06d}.png"
            write(out_dir / relative, draw_shapes(image_size, scene))
            media = {"type": "image", "image": relative}
        else:
            relative = f"videos/{index:06d}.mp4"
            write(out_dir / relative, np.stack([draw_shapes(image_size, items) for items in scene]))
            media = {"type": "video", "video": relative}
        meta = {"kind": kind, "split": split, "choices": list(ANSWERS[kind]), "question_index": question_index}
        meta.update(scene_meta)
        if kind.startswith("video-"):
            meta.update({"frames": video_frames, "fps": video_fps})
        rows.append(_row(f"shapes-{split}-{index:06d}", media, QUESTIONS[kind][question_index], answer, meta))
    return rows


def generate_shapes_qa(
    out_dir: str | os.PathLike[str],
    num_train: int,
    num_eval: int,
    seed: int = 0,
    image_size: int = 56,
    video_frames: int = 8,
    video_fps: float = 2.0,
    kinds: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write the shapes-world QA set into ``out_dir`` and return a summary.

    Args:
        out_dir: destination folder (created); ``train.jsonl``, ``eval.jsonl``, ``images/`` and ``videos/``
            inside it are overwritten.
        num_train, num_eval: number of rows per split (``num_eval`` may be 0).
        seed: the same seed gives the same rows and the same bytes in every file.
        image_size: side in pixels of images and video frames (even; multiples of 28 avoid resizing in Qwen-VL).
        video_frames: frames per clip (the default 8 at ``video_fps=2`` spans 4 s, so a 2-fps sampler keeps all).
        video_fps: frame rate written into the MP4 files.
        kinds: subset of :data:`KINDS` to draw from uniformly (default: all).

    Returns:
        ``{"out_dir", "train", "eval"`` (JSONL paths as strings), ``"num_train", "num_eval", "seed",
        "counts": {split: {kind: n}}}``.
    """
    kinds = tuple(KINDS if kinds is None else kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown or empty kinds {unknown or list(kinds)}; expected a non-empty subset of {KINDS}")
    if num_train < 0 or num_eval < 0:
        raise ValueError(f"num_train and num_eval must be >= 0, got {num_train} and {num_eval}")
    if image_size < 16 or image_size % 2:
        raise ValueError(f"image_size must be an even number >= 16, got {image_size}")
    if video_frames < 2:
        raise ValueError(f"video_frames must be >= 2, got {video_frames}")
    if not video_fps > 0:
        raise ValueError(f"video_fps must be positive, got {video_fps}")

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if any(k.startswith("video-") for k in kinds):
        (out / "videos").mkdir(parents=True, exist_ok=True)

    def write(path: Path, pixels: np.ndarray) -> None:
        if pixels.ndim == 3:
            Image.fromarray(pixels).save(path, format="PNG")
        else:
            write_mp4(path, pixels, fps=video_fps)

    common = dict(kinds=kinds, image_size=image_size, video_frames=video_frames, video_fps=video_fps, write=write)
    train_seen: set[str] = set()
    train = _generate_split("train", num_train, random.Random(f"shapes-train-{seed}"), out, 0,
                            seen=train_seen, exclude=set(), **common)
    evaluation = _generate_split("eval", num_eval, random.Random(f"shapes-eval-{seed}"), out, num_train,
                                 seen=set(), exclude=train_seen, **common)
    paths = {}
    for split, rows in (("train", train), ("eval", evaluation)):
        path = out / f"{split}.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        paths[split] = str(path)

    def tally(rows: list[dict[str, Any]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["meta"]["kind"]] = counts.get(row["meta"]["kind"], 0) + 1
        return dict(sorted(counts.items()))

    return {
        "out_dir": str(out),
        "train": paths["train"],
        "eval": paths["eval"],
        "num_train": len(train),
        "num_eval": len(evaluation),
        "seed": seed,
        "counts": {"train": tally(train), "eval": tally(evaluation)},
    }


__all__ = [
    "ANSWERS",
    "COLOURS",
    "COUNT_WORDS",
    "DIRECTIONS",
    "KINDS",
    "QUESTIONS",
    "SHAPES",
    "draw_shapes",
    "generate_shapes_qa",
    "write_mp4",
]
