"""Shapes world for few-shot image classification: the embedded stand-in for CLS-RL's 11 datasets.

CLS-RL (Li et al., "To Think or Not To Think", arXiv 2503.16188) fine-tunes a pretrained VLM on 4-shot splits of
ImageNet, Caltech101, ... in the CoOp protocol (Zhou et al., "Learning to Prompt for Vision-Language Models",
IJCV 2022). This module is a procedural dataset of the same shape, small enough for a tiny VLM on a CPU:

* **classes** are ``colour × shape`` (6 × 4 = 24), named by short phrases such as ``"red circle"``; every word is a
  single token of the tiny tokenizer (:mod:`mmsft.models.tiny_tokenizer`);
* **nuisance factors** that never change the class: size, position, rotation, a jitter of the fill colour, a light
  background tint and a texture (solid or striped);
* **label order** puts the 12 *base* classes first, so CoOp's base-to-new rule (first ``ceil(n/2)`` labels = base,
  :func:`tasks.image_classification.sampling.split_base_new`) yields a fixed, *compositional* split: class
  ``(colour i, shape j)`` is base iff ``(i + j)`` is even, so every colour and every shape occurs in both halves and
  new classes are unseen combinations of seen attributes.

Everything is deterministic: an image depends only on ``(seed, class, index)``. Dependencies: numpy and Pillow.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 165, 50),
    "blue": (35, 75, 225),
    "yellow": (235, 200, 20),
    "purple": (140, 45, 180),
    "orange": (245, 130, 10),
}
"""Class colours and their nominal RGB fill (jittered by up to ±:data:`COLOUR_JITTER` per channel)."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
"""Class shapes."""

TEXTURES: tuple[str, ...] = ("solid", "striped")
"""Nuisance texture of the shape (not part of the class)."""

SIZES: tuple[str, ...] = ("small", "large")
"""Nuisance size bucket (asked about in pretraining questions, never part of the class)."""

BACKGROUNDS: tuple[tuple[int, int, int], ...] = (
    (245, 245, 245), (232, 232, 226), (226, 234, 240), (240, 232, 226), (228, 240, 230),
)
"""Light background tints (nuisance)."""

COLOUR_JITTER = 18
IMAGE_SIZE = 112
"""Default image side: 4 × 28 px, i.e. 4 × 4 merged Qwen-VL vision tokens, no resizing."""

QUESTION_PREFIX = "What type of object is in the photo?"
"""CLS-RL's default question prefix (vision.md §1, used for all datasets without a specific one)."""


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


@dataclass(frozen=True)
class Scene:
    """Everything that determines one image."""

    colour: str
    shape: str
    texture: str
    size: str
    radius: float
    cx: float
    cy: float
    angle: float
    fill: tuple[int, int, int]
    background: tuple[int, int, int]

    @property
    def classname(self) -> str:
        return f"{self.colour} {self.shape}"


def sample_scene(rng: random.Random, colour: str, shape: str, image_size: int = IMAGE_SIZE) -> Scene:
    """Draw the nuisance factors of one image of class ``colour shape`` from ``rng``."""
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; expected one of {tuple(COLOURS)}")
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    size = rng.choice(SIZES)
    low, high = (0.22, 0.28) if size == "small" else (0.33, 0.42)
    radius = round(rng.uniform(low, high) * image_size, 1)
    cx = round(rng.uniform(radius + 2, image_size - radius - 2), 1)
    cy = round(rng.uniform(radius + 2, image_size - radius - 2), 1)
    fill = tuple(int(np.clip(v + rng.randint(-COLOUR_JITTER, COLOUR_JITTER), 0, 255)) for v in COLOURS[colour])
    return Scene(colour=colour, shape=shape, texture=rng.choice(TEXTURES), size=size, radius=radius, cx=cx, cy=cy,
                 angle=round(rng.uniform(-15.0, 15.0), 1), fill=fill,  # type: ignore[arg-type]
                 background=rng.choice(BACKGROUNDS))


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
    """Draw ``scene`` on an ``image_size`` × ``image_size`` RGB canvas."""
    image = Image.new("RGB", (image_size, image_size), scene.background)
    draw = ImageDraw.Draw(image)
    r, cx, cy = scene.radius, scene.cx, scene.cy
    if scene.texture not in TEXTURES:
        raise ValueError(f"unknown texture {scene.texture!r}; expected one of {TEXTURES}")
    if scene.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=scene.fill)
    else:
        draw.polygon(_outline(scene.shape, cx, cy, r, scene.angle), fill=scene.fill)
    if scene.texture == "striped":  # background-coloured horizontal stripes across the filled shape
        pixels = np.asarray(image).copy()
        mask = np.all(pixels == np.array(scene.fill, dtype=np.uint8), axis=-1)
        rows = (np.arange(image_size) // 3) % 2 == 1
        mask &= rows[:, None]
        pixels[mask] = scene.background
        image = Image.fromarray(pixels)
    return image


def class_scenes(classname: str, count: int, seed: int, image_size: int = IMAGE_SIZE) -> list[Scene]:
    """``count`` scenes of one class; the stream depends only on ``(seed, classname)``."""
    if classname not in CLASSNAMES:
        raise ValueError(f"unknown shapes-world class {classname!r}; expected one of {list(CLASSNAMES)}")
    colour, shape = classname.split(" ")
    rng = random.Random(f"shapes-world-{seed}-{classname}")
    return [sample_scene(rng, colour, shape, image_size) for _ in range(count)]


def generate_images(per_class: int, seed: int = 0, image_size: int = IMAGE_SIZE,
                    classnames: tuple[str, ...] | list[str] | None = None) -> list[tuple[Image.Image, int, Scene]]:
    """``per_class`` images of each class (label order) as ``(image, label, scene)``; deterministic by ``seed``."""
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if image_size < 28 or image_size % 28:
        raise ValueError(f"image_size must be a positive multiple of 28 (Qwen-VL merged patch), got {image_size}")
    names = list(CLASSNAMES if classnames is None else classnames)
    out = []
    for name in names:
        label = CLASSNAMES.index(name) if name in CLASSNAMES else -1
        for scene in class_scenes(name, per_class, seed, image_size):
            out.append((render(scene, image_size), label, scene))
    return out


def write_image_folder(root: str, per_class: int, seed: int = 0, image_size: int = IMAGE_SIZE) -> list[str]:
    """Write ``root/<label index>_<colour>_<shape>/<n>.png`` and return the class names in label order.

    Folder names start with the zero-padded label index, so the sorted folder order of
    :func:`tasks.image_classification.loaders.load_image_folder` equals the label order; the loader turns
    ``"03_red_circle"`` back into ``"red circle"`` when called with ``strip_index=True``.
    """
    from pathlib import Path

    base = Path(root)
    for image, label, _scene in generate_images(per_class, seed, image_size):
        folder = base / f"{label:02d}_{CLASSNAMES[label].replace(' ', '_')}"
        folder.mkdir(parents=True, exist_ok=True)
        index = len(list(folder.glob("*.png")))
        image.save(folder / f"{index:04d}.png", format="PNG")
    return list(CLASSNAMES)


__all__ = [
    "BACKGROUNDS", "BASE_CLASSES", "CLASSNAMES", "CLASS_ATTRIBUTES", "COLOURS", "IMAGE_SIZE", "NEW_CLASSES",
    "QUESTION_PREFIX", "SHAPES", "SIZES", "Scene", "TEXTURES", "class_scenes", "generate_images", "render",
    "sample_scene", "write_image_folder",
]
