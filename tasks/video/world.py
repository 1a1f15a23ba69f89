"""The video reasoning world: procedural clips of two moving shapes whose questions need temporal reasoning, in the
five problem types of VideoRFT / Video-R1 (arXiv 2505.12434, 2503.21776), written in the released JSON format so
:func:`tasks.video.loaders.load_released` reads it like the real files.

A clip (:class:`Clip`) is two distinct objects (colour × shape of :mod:`mmsft.data.shapes`) on a plain background,
:data:`FRAMES` frames at :data:`FPS` fps. Each object is still or starts moving at some frame, in one of four
directions, slowly or fast, bouncing off the walls; some clips show a word (a caption in the top band). Questions:

========== ================= ==================================================================================
kind       problem type      question
========== ================= ==================================================================================
direction  multiple choice   Which direction does the <object> move?
first      multiple choice   Which object starts moving first?
faster     multiple choice   Which object moves faster?
crossings  numerical         How many times does the <object> cross the vertical line in the middle?
after      free-form         What happens after the <object> starts moving?
word       OCR               What word is written in the video?
start      regression        At what time in seconds does the <object> start moving?
========== ================= ==================================================================================

Every row has a template chain of thought (``process``) that states the visual facts the answer depends on —
"Let me think about what the video shows. The video shows a red circle and a blue square. The red circle starts
moving at 1.5 seconds and moves left fast. ..." — and the answer in ``solution``. Deterministic given the seed; the
eval split never repeats a train clip.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mmsft.data.shapes import BACKGROUND, COLOURS, DIRECTIONS, SHAPES, Scene, render, write_mp4

SIZE = 56
FRAMES = 8
FPS = 2.0
RADIUS = 6.0
SPEEDS = {"slowly": 3.0, "fast": 7.0}
"""Pixels per frame of a slow and a fast object."""
KINDS: dict[str, str] = {"direction": "multiple choice", "first": "multiple choice", "faster": "multiple choice",
                         "crossings": "numerical", "after": "free-form", "word": "OCR", "start": "regression"}
"""Question kind → problem type."""
WORDS: tuple[str, ...] = ("red", "blue", "green", "left", "right", "up", "down", "circle", "square", "star", "stop",
                          "go")
"""Words a clip may show (OCR questions)."""
_STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


@dataclass(frozen=True)
class Mover:
    colour: str
    shape: str
    x: float
    y: float
    direction: str  # one of DIRECTIONS, or "still"
    speed: str  # a key of SPEEDS
    start_frame: int

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def moves(self) -> bool:
        return self.direction != "still"

    def positions(self, frames: int = FRAMES, size: int = SIZE) -> list[tuple[float, float]]:
        """Centre per frame: still until ``start_frame``, then ``speed`` px/frame, reflected at the walls."""
        low, high = RADIUS + 1, size - RADIUS - 1
        dx, dy = _STEP.get(self.direction, (0, 0))
        out = []
        for t in range(frames):
            travel = SPEEDS[self.speed] * max(0, t - self.start_frame) if self.moves else 0.0
            out.append((_reflect(self.x + dx * travel, low, high), _reflect(self.y + dy * travel, low, high)))
        return out

    def crossings(self, frames: int = FRAMES, size: int = SIZE) -> int:
        """Times the centre crosses the vertical middle line between consecutive frames."""
        xs = [x - size / 2 for x, _ in self.positions(frames, size)]
        return sum(1 for a, b in zip(xs, xs[1:]) if (a < 0 <= b) or (b < 0 <= a))


def _reflect(value: float, low: float, high: float) -> float:
    span = high - low
    phase = (value - low) % (2 * span)
    return low + (phase if phase <= span else 2 * span - phase)


@dataclass(frozen=True)
class Clip:
    movers: tuple[Mover, Mover]
    word: str | None = None
    word_from: int = 0

    def frames(self, frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
        """(T, H, W, 3) uint8 pixels."""
        return np.stack([self.frame(t, frames, size) for t in range(frames)])

    def frame(self, t: int, frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
        """(H, W, 3) uint8 pixels of frame ``t``."""
        image = Image.new("RGB", (size, size), BACKGROUND)
        for mover in self.movers:
            layer = render(Scene(mover.colour, mover.shape, RADIUS, (mover.positions(frames, size)[t],)), size)
            mask = (np.asarray(layer) != np.array(BACKGROUND, np.uint8)).any(-1)
            image.paste(layer, (0, 0), Image.fromarray(mask.astype(np.uint8) * 255))
        if self.word and t >= self.word_from:
            ImageDraw.Draw(image).text((2, 1), self.word, fill=(0, 0, 0), font=_font())
        return np.asarray(image)

    def description(self) -> list[str]:
        """The visual facts, one sentence each (the CoT's video description)."""
        a, b = self.movers
        sentences = [f"The video shows {_article(a.name)} and {_article(b.name)}."]
        for m in self.movers:
            if m.moves:
                sentences.append(f"The {m.name} starts moving at {m.start_frame / FPS:.1f} seconds and moves "
                                 f"{m.direction} {m.speed}.")
            else:
                sentences.append(f"The {m.name} stays still.")
        if self.word:
            sentences.append(f"The word {self.word} is written at the top.")
        return sentences


def _article(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


_FONT: Any = None


def _font() -> Any:
    global _FONT
    if _FONT is None:
        _FONT = ImageFont.load_default()
    return _FONT


def sample_clip(rng: random.Random, with_word: bool) -> Clip:
    """Two distinct objects with random motion; positions keep a still object clear of the middle line."""
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    (ca, sa), (cb, sb) = rng.sample(pairs, 2)
    while cb == ca:
        cb, sb = rng.choice(pairs)
    movers = []
    for colour, shape in ((ca, sa), (cb, sb)):
        direction = rng.choice(DIRECTIONS + ("still",)) if rng.random() < 0.35 else rng.choice(DIRECTIONS)
        movers.append(Mover(colour, shape, x=round(rng.uniform(RADIUS + 2, SIZE - RADIUS - 2), 1),
                            y=round(rng.uniform(RADIUS + 12, SIZE - RADIUS - 2), 1), direction=direction,
                            speed=rng.choice(tuple(SPEEDS)), start_frame=rng.randint(1, 4)))
    word = rng.choice(WORDS) if with_word else None
    return Clip((movers[0], movers[1]), word, rng.randint(0, 2) if word else 0)


def _options(rng: random.Random, correct: str, others: Sequence[str]) -> tuple[list[str], str]:
    choices = [correct, *others]
    rng.shuffle(choices)
    letters = "ABCD"
    return [f"{letters[i]}. {c}" for i, c in enumerate(choices)], letters[choices.index(correct)]


def make_question(clip: Clip, kind: str, rng: random.Random) -> tuple[str, list[str], str, str] | None:
    """(problem, options, answer, reasoning step) for ``kind`` on ``clip``, or None when the clip cannot ask it."""
    a, b = clip.movers
    movers = [m for m in clip.movers if m.moves]
    if kind == "direction" and movers:
        m = rng.choice(movers)
        if m.crossings() > 1 or _bounced(m):
            return None
        options, letter = _options(rng, m.direction, [d for d in DIRECTIONS if d != m.direction])
        options.sort()
        letter = "ABCD"[[o[3:] for o in options].index(m.direction)]
        return (f"Which direction does the {m.name} move?", options, letter,
                f"The {m.name} moves {m.direction}, which is option {letter}.")
    if kind == "first" and len(movers) == 2 and a.start_frame != b.start_frame:
        early = min(movers, key=lambda m: m.start_frame)
        late = b if early is a else a
        options, letter = _options(rng, f"the {early.name}", [f"the {late.name}"])
        return ("Which object starts moving first?", options, letter,
                f"The {early.name} starts before the {late.name}, which is option {letter}.")
    if kind == "faster" and len(movers) == 2 and a.speed != b.speed:
        fast = a if a.speed == "fast" else b
        slow = b if fast is a else a
        options, letter = _options(rng, f"the {fast.name}", [f"the {slow.name}"])
        return ("Which object moves faster?", options, letter,
                f"The {fast.name} moves fast and the {slow.name} moves slowly, which is option {letter}.")
    if kind == "crossings":
        horizontal = [m for m in clip.movers if m.direction in ("left", "right") or not m.moves]
        if not horizontal:
            return None
        m = rng.choice(horizontal)
        n = m.crossings()
        return (f"How many times does the {m.name} cross the vertical line in the middle?", [], str(n),
                f"Following the {m.name}, it crosses the middle line {n} times.")
    if kind == "after" and len(movers) == 2 and a.start_frame != b.start_frame:
        early = min(movers, key=lambda m: m.start_frame)
        late = b if early is a else a
        answer = f"the {late.name} moves {late.direction}"
        return (f"What happens after the {early.name} starts moving?", [], answer,
                f"After the {early.name} starts, {answer}.")
    if kind == "word" and clip.word:
        return ("What word is written in the video?", [], clip.word, f"The text at the top reads {clip.word}.")
    if kind == "start" and movers:
        m = rng.choice(movers)
        seconds = f"{m.start_frame / FPS:.1f}"
        return (f"At what time in seconds does the {m.name} start moving?", [], seconds,
                f"The {m.name} is still for {m.start_frame} frames at {FPS:g} frames per second, so it starts at "
                f"{seconds} seconds.")
    return None


def _bounced(m: Mover) -> bool:
    path = m.positions()
    dx, dy = _STEP[m.direction]
    steps = [(b[0] - a[0]) * dx + (b[1] - a[1]) * dy for a, b in zip(path, path[1:])]
    return any(s < -1e-9 for s in steps)


def cot(clip: Clip, step: str, answer: str) -> str:
    """The template chain of thought: question parsing, video description, reasoning, conclusion."""
    body = " ".join(["Let me think about what the video shows.", *clip.description(), step,
                     f"So the answer is {answer}."])
    return f"<think>{body}</think>"


def generate_world(out_dir: str | Path, num_train: int, num_eval: int, seed: int = 0,
                   kinds: Sequence[str] | None = None, frames: int = FRAMES) -> dict[str, Any]:
    """Write ``train.json`` / ``eval.json`` (released Video-R1 format with ``process``) and ``videos/*.mp4``.

    Returns a summary with the paths and the per-kind counts. Kinds are drawn round-robin, so every kind appears
    (when the clip allows it, otherwise the next clip is drawn).
    """
    kinds = tuple(kinds or KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown or empty kinds {unknown or list(kinds)}; expected a subset of {tuple(KINDS)}")
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    seen: set[Clip] = set()
    summary: dict[str, Any] = {"out_dir": str(out), "seed": seed, "counts": {}}
    index = 0
    for split, count in (("train", num_train), ("eval", num_eval)):
        rng = random.Random(f"video-world-{split}-{seed}")
        rows, counts = [], {k: 0 for k in kinds}
        while len(rows) < count:
            kind = kinds[len(rows) % len(kinds)]
            clip = sample_clip(rng, with_word=kind == "word" or rng.random() < 0.2)
            question = make_question(clip, kind, rng)
            if question is None or (split == "eval" and clip in seen):
                continue
            if split == "train":
                seen.add(clip)
            problem, options, answer, step = question
            relative = f"videos/{index:06d}.mp4"
            write_mp4(out / relative, clip.frames(frames), fps=FPS)
            rows.append({"problem_id": index, "problem": problem, "data_type": "video", "problem_type": KINDS[kind],
                         "options": options, "process": cot(clip, step, answer),
                         "solution": f"<answer>{answer}</answer>", "path": f"./{relative}",
                         "data_source": f"video-world/{kind}", "kind": kind, "split": split})
            counts[kind] += 1
            index += 1
        path = out / f"{split}.json"
        path.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
        summary[split] = str(path)
        summary["counts"][split] = counts
    return summary


__all__ = ["Clip", "FPS", "FRAMES", "KINDS", "Mover", "SIZE", "SPEEDS", "WORDS", "cot", "generate_world",
           "make_question", "sample_clip"]
