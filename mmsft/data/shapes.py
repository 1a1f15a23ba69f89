"""Shapes world: the one procedural world of flat coloured shapes behind the demo QA set and the CLS-RL study.

A scene is one or a few equal shapes (6 colours x 4 shapes) on a light background, drawn with Pillow. Two datasets
are views of the same world:

* **Few-shot classification** (the embedded stand-in for CLS-RL's 11 datasets; Li et al., "To Think or Not To
  Think", arXiv 2503.16188, in the CoOp protocol of Zhou et al., IJCV 2022): classes are ``colour x shape``
  (24, named ``"red circle"``), with nuisance factors that never change the class (size, position, rotation, fill
  jitter, background tint, solid or striped texture). :data:`CLASSNAMES` lists the 12 *base* classes first, so
  CoOp's base-to-new rule (first ``ceil(n/2)`` labels) gives a fixed compositional split: class
  ``(colour i, shape j)`` is base iff ``i + j`` is even. An image depends only on ``(seed, class, index)``
  (:func:`generate_images`, :func:`write_image_folder`). The shipped base model ``assets/shapes_base/`` was
  pretrained on these images, so their pixels must not change.
* **Image + video QA** (:func:`generate_shapes_qa`, the ``mmsft demo`` data): plain scenes (nominal colour, no
  rotation, solid, white background) with one-word answers (colour, shape, count, direction of motion), written as
  ``train.jsonl`` / ``eval.jsonl`` in the schema of :mod:`mmsft.data.schema` with PNG images and H.264 MP4 clips;
  train and eval use separate random streams and no eval scene repeats a train scene.

Every answer and class word is one token of the tiny tokenizer (:mod:`mmsft.models.tiny_tokenizer`). Generation is
deterministic given the seed. Dependencies: numpy, Pillow and PyAV (imported when writing videos).
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import astuple, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

# ---------------------------------------------------------------------------------------------- the world
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 165, 50),
    "blue": (35, 75, 225),
    "yellow": (235, 200, 20),
    "purple": (140, 45, 180),
    "orange": (245, 130, 10),
}
"""Colours and their nominal RGB fill (classification scenes jitter it by up to +-:data:`COLOUR_JITTER`)."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
TEXTURES: tuple[str, ...] = ("solid", "striped")
"""Texture of the shapes (a classification nuisance; QA scenes are solid)."""
SIZES: tuple[str, ...] = ("small", "large")
"""Size bucket of a single-shape scene (radius 0.22-0.28 or 0.33-0.42 of the image side)."""
BACKGROUND: tuple[int, int, int] = (245, 245, 245)
BACKGROUNDS: tuple[tuple[int, int, int], ...] = (
    BACKGROUND, (232, 232, 226), (226, 234, 240), (240, 232, 226), (228, 240, 230),
)
"""Light background tints (classification nuisance; QA scenes use :data:`BACKGROUND`)."""
COLOUR_JITTER = 18
IMAGE_SIZE = 112
"""Classification image side: 4 x 28 px, i.e. 4 x 4 merged Qwen-VL vision tokens, no resizing."""


@dataclass(frozen=True)
class Scene:
    """Everything that determines one image: ``len(centres)`` equal shapes on a plain background.

    ``fill`` defaults to the colour's nominal RGB; ``size`` is the size bucket of a scene drawn by
    :func:`sample_scene` (None for QA count and motion scenes, whose radius follows their layout).
    """

    colour: str
    shape: str
    radius: float
    centres: tuple[tuple[float, float], ...]
    size: str | None = None
    angle: float = 0.0
    fill: tuple[int, int, int] | None = None
    texture: str = "solid"
    background: tuple[int, int, int] = BACKGROUND

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; expected one of {tuple(COLOURS)}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        if self.texture not in TEXTURES:
            raise ValueError(f"unknown texture {self.texture!r}; expected one of {TEXTURES}")
        if self.fill is None:
            object.__setattr__(self, "fill", COLOURS[self.colour])

    @property
    def classname(self) -> str:
        return f"{self.colour} {self.shape}"


def sample_scene(rng: random.Random, colour: str, shape: str, image_size: int = IMAGE_SIZE,
                 nuisance: bool = True) -> Scene:
    """One shape of ``colour`` and ``shape`` with a random size bucket and position drawn from ``rng``.

    With ``nuisance`` (classification images) the fill jitter, texture, rotation and background tint are drawn
    too; without it the scene is plain (QA images). The order of the draws fixes the pixels of the pretraining
    and few-shot images, so it must not change.
    """
    if colour not in COLOURS or shape not in SHAPES:
        raise ValueError(f"unknown class {colour!r} {shape!r}; expected a colour of {tuple(COLOURS)} "
                         f"and a shape of {SHAPES}")
    size = rng.choice(SIZES)
    low, high = (0.22, 0.28) if size == "small" else (0.33, 0.42)
    radius = round(rng.uniform(low, high) * image_size, 1)
    cx = round(rng.uniform(radius + 2, image_size - radius - 2), 1)
    cy = round(rng.uniform(radius + 2, image_size - radius - 2), 1)
    if not nuisance:
        return Scene(colour, shape, radius, ((cx, cy),), size=size)
    fill = tuple(int(np.clip(v + rng.randint(-COLOUR_JITTER, COLOUR_JITTER), 0, 255)) for v in COLOURS[colour])
    texture = rng.choice(TEXTURES)
    angle = round(rng.uniform(-15.0, 15.0), 1)
    return Scene(colour, shape, radius, ((cx, cy),), size=size, angle=angle, fill=fill,  # type: ignore[arg-type]
                 texture=texture, background=rng.choice(BACKGROUNDS))


def _outline(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        points = [(math.pi / 4 + k * math.pi / 2, r * 0.95) for k in range(4)]
    elif shape == "triangle":
        points = [(-math.pi / 2 + k * 2 * math.pi / 3, r) for k in range(3)]
    elif shape == "star":
        points = [(-math.pi / 2 + k * math.pi / 5, r if k % 2 == 0 else r * 0.45) for k in range(10)]
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    theta = math.radians(angle)
    return [(cx + d * math.cos(a + theta), cy + d * math.sin(a + theta)) for a, d in points]


def render(scene: Scene, image_size: int = IMAGE_SIZE) -> Image.Image:
    """Draw ``scene`` on an ``image_size`` x ``image_size`` RGB canvas.

    A striped texture paints every third-row pair of the filled pixels back in the background colour.
    """
    image = Image.new("RGB", (image_size, image_size), scene.background)
    draw = ImageDraw.Draw(image)
    r = scene.radius
    for cx, cy in scene.centres:
        if scene.shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=scene.fill)
        else:
            draw.polygon(_outline(scene.shape, cx, cy, r, scene.angle), fill=scene.fill)
    if scene.texture == "striped":
        pixels = np.asarray(image).copy()
        mask = np.all(pixels == np.array(scene.fill, dtype=np.uint8), axis=-1)
        mask &= ((np.arange(image_size) // 3) % 2 == 1)[:, None]
        pixels[mask] = scene.background
        image = Image.fromarray(pixels)
    return image


# ---------------------------------------------------------------------------------------------- classification
def _class_order() -> list[tuple[str, str]]:
    colours = list(COLOURS)
    base = [(c, s) for i, c in enumerate(colours) for j, s in enumerate(SHAPES) if (i + j) % 2 == 0]
    new = [(c, s) for i, c in enumerate(colours) for j, s in enumerate(SHAPES) if (i + j) % 2 == 1]
    return base + new


CLASS_ATTRIBUTES: tuple[tuple[str, str], ...] = tuple(_class_order())
"""``(colour, shape)`` per label index, base classes first."""
CLASSNAMES: tuple[str, ...] = tuple(f"{c} {s}" for c, s in CLASS_ATTRIBUTES)
"""Class names in label order (label ``i`` is ``CLASSNAMES[i]``)."""
NUM_BASE = math.ceil(len(CLASSNAMES) / 2)
BASE_CLASSES: tuple[str, ...] = CLASSNAMES[:NUM_BASE]
NEW_CLASSES: tuple[str, ...] = CLASSNAMES[NUM_BASE:]


def class_scenes(classname: str, count: int, seed: int, image_size: int = IMAGE_SIZE) -> list[Scene]:
    """``count`` scenes of one class; the stream depends only on ``(seed, classname)``."""
    if classname not in CLASSNAMES:
        raise ValueError(f"unknown shapes-world class {classname!r}; expected one of {list(CLASSNAMES)}")
    colour, shape = classname.split(" ")
    rng = random.Random(f"shapes-world-{seed}-{classname}")
    return [sample_scene(rng, colour, shape, image_size) for _ in range(count)]


def generate_images(per_class: int, seed: int = 0, image_size: int = IMAGE_SIZE,
                    classnames: Sequence[str] | None = None) -> list[tuple[Image.Image, int, Scene]]:
    """``per_class`` images of each class (label order) as ``(image, label, scene)``; deterministic by ``seed``."""
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if image_size < 28 or image_size % 28:
        raise ValueError(f"image_size must be a positive multiple of 28 (Qwen-VL merged patch), got {image_size}")
    out = []
    for name in CLASSNAMES if classnames is None else classnames:
        label = CLASSNAMES.index(name) if name in CLASSNAMES else -1
        for scene in class_scenes(name, per_class, seed, image_size):
            out.append((render(scene, image_size), label, scene))
    return out


def write_image_folder(root: str | os.PathLike[str], per_class: int, seed: int = 0,
                       image_size: int = IMAGE_SIZE) -> list[str]:
    """Write ``root/<label index>_<colour>_<shape>/<n>.png`` and return the class names in label order.

    Folder names start with the zero-padded label index, so the sorted folder order of an image-folder loader
    equals the label order (``"03_red_circle"`` reads back as ``"red circle"`` when the index is stripped).
    """
    base = Path(root)
    for image, label, _scene in generate_images(per_class, seed, image_size):
        folder = base / f"{label:02d}_{CLASSNAMES[label].replace(' ', '_')}"
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{len(list(folder.glob('*.png'))):04d}.png", format="PNG")
    return list(CLASSNAMES)


# ---------------------------------------------------------------------------------------------- QA
COUNT_WORDS: tuple[str, ...] = ("one", "two", "three", "four")
"""Answer set of count questions (1 to 4 shapes, one per quadrant)."""
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
"""Answer set of motion questions."""

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


def _yuv420p_frame(rgb: np.ndarray) -> Any:
    """An ``av.VideoFrame`` in yuv420p with the pixels of ``rgb`` (H x W x 3, even sides) and zeroed row padding.

    The frame that swscale converts to leaves the bytes past each row's width (64-byte line size for 56 px rows)
    uninitialised, and x264 reads them: encoding the same clip twice in one process gave different bytes. The
    conversion is done here, then copied into planes whose padding is zero.
    """
    import av

    height, width = rgb.shape[:2]
    packed = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    chroma = (height // 2, width // 2)
    values = (packed[:height], packed[height:height * 5 // 4].reshape(chroma), packed[height * 5 // 4:].reshape(chroma))
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, plane_values in zip(frame.planes, values):
        padded = np.zeros((plane_values.shape[0], plane.line_size), dtype=np.uint8)
        padded[:, : plane_values.shape[1]] = plane_values
        plane.update(padded)
    return frame


def write_mp4(path: str | os.PathLike[str], frames: np.ndarray, fps: float = 2.0, crf: int = 12) -> None:
    """Write ``frames`` (T x H x W x 3 uint8, even H and W) as H.264 yuv420p MP4 with PyAV, single-threaded.

    One encoder thread and fully initialised input frames keep the bytes identical from run to run.
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
            for packet in stream.encode(_yuv420p_frame(np.ascontiguousarray(array))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _qa_scenes(kind: str, rng: random.Random, size: int, frames: int) -> tuple[list[Scene], str, dict[str, Any]]:
    """The scene (images) or per-frame scenes (videos), the answer and the scene metadata of one QA sample."""
    colour = rng.choice(tuple(COLOURS))
    shape = rng.choice(SHAPES)
    if kind in ("image-colour", "image-shape"):
        scene = sample_scene(rng, colour, shape, size, nuisance=False)
        return [scene], colour if kind == "image-colour" else shape, {"shape": shape, "colour": colour, "count": 1}
    if kind == "image-count":
        count = rng.randint(1, len(COUNT_WORDS))
        half = size / 2
        r = round(rng.uniform(0.22, 0.3) * half, 1)
        centres = []
        for cell in sorted(rng.sample(range(4), count)):
            x0, y0 = (cell % 2) * half, (cell // 2) * half
            centres.append((round(x0 + rng.uniform(r + 1, half - r - 1), 1),
                            round(y0 + rng.uniform(r + 1, half - r - 1), 1)))
        meta = {"shape": shape, "colour": colour, "count": count}
        return [Scene(colour, shape, r, tuple(centres))], COUNT_WORDS[count - 1], meta
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
        clip.append(Scene(colour, shape, r, ((along, across) if direction in ("left", "right") else (across, along),)))
    answer = direction if kind == "video-direction" else colour
    return clip, answer, {"shape": shape, "colour": colour, "direction": direction}


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


def _generate_split(split: str, count: int, rng: random.Random, out_dir: Path, first_index: int,
                    kinds: Sequence[str], image_size: int, video_frames: int, video_fps: float, seen: set[str],
                    exclude: set[str], write: Callable[[Path, np.ndarray], None]) -> list[dict[str, Any]]:
    rows = []
    for offset in range(count):
        index = first_index + offset
        for _ in range(1000):  # draw scenes until one is not in the excluded (train) set
            kind = kinds[rng.randrange(len(kinds))]
            scenes, answer, scene_meta = _qa_scenes(kind, rng, image_size, video_frames)
            signature = json.dumps([kind, [astuple(scene) for scene in scenes]], separators=(",", ":"))
            if signature not in exclude:
                break
        else:
            raise RuntimeError(f"could not draw a {split} scene that differs from every train scene")
        seen.add(signature)
        question_index = rng.randrange(len(QUESTIONS[kind]))
        pixels = np.stack([np.asarray(render(scene, image_size)) for scene in scenes])
        if kind.startswith("image-"):
            relative = f"images/{index:06d}.png"
            write(out_dir / relative, pixels[0])
            media = {"type": "image", "image": relative}
        else:
            relative = f"videos/{index:06d}.mp4"
            write(out_dir / relative, pixels)
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
    "ANSWERS", "BACKGROUND", "BACKGROUNDS", "BASE_CLASSES", "CLASSNAMES", "CLASS_ATTRIBUTES", "COLOURS",
    "COUNT_WORDS", "DIRECTIONS", "IMAGE_SIZE", "KINDS", "NEW_CLASSES", "QUESTIONS", "SHAPES", "SIZES", "Scene",
    "TEXTURES", "class_scenes", "generate_images", "generate_shapes_qa", "render", "sample_scene",
    "write_image_folder", "write_mp4",
]
