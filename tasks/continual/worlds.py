"""Task data of the continual post-training study, built from mmsft's worlds (JSONL + PNG/MP4, trainer schema).

Every task is a closed-answer question whose prompt lists the allowed answers in the instruction format the shapes
base model was pretrained on (``"Please choose one from list [ a, b, ...]."`` + ``"Please directly output the
answer."``), so an answer is verifiable by exact match (reward ``cls_accuracy``, evaluator ``generation_accuracy``)
— except Sokoban, whose next move is checked by the puzzle verifier (reward and evaluator ``puzzle_success``).

* ``classify`` — shapes-world classification (24 colour × shape classes, nuisance factors; CLS-RL's no-thinking
  prompt with the shapes prefix; Li et al., arXiv 2503.16188);
* ``count`` — how many shapes (one to four, one per quadrant), shapes-world QA;
* ``direction`` — the direction a shape moves in an 8-frame clip (video QA);
* ``vgrp-cell`` — VGRP-Bench's cell-level perception probe (Ren et al., arXiv 2503.23064) on 4×4 Sudoku boards
  drawn at 112 px (one merged vision token per cell), answers balanced over ``* 1 2 3 4``;
* ``sokoban`` — the optimal next move on a 6×6 one-box level (text grid; "Debunk the Myth of SFT
  Generalization", arXiv 2510.00237), any move-optimal first action accepted.

General probes (never trained on): plain attribute questions (colour, shape, size) of the base model's pretraining
distribution, on images from their own random stream — the analogue of MMMU / MMLU-Pro in Lai et al. (arXiv
2507.05386).

:func:`write_format_rows` writes the *format warm-up* rows: task prompts whose answer is drawn uniformly from the
prompt's own option list. SFT on them teaches a base model to answer a new task's prompt with one of its options
(chance accuracy) without teaching the task, the analogue of starting from an instruction-tuned model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

LIST_SUFFIX = "\nPlease choose one from list [ {options}].\n Please directly output the answer."
TASKS: tuple[str, ...] = ("classify", "count", "direction", "vgrp-cell", "sokoban")
"""Names of the buildable tasks, in the study's default order."""
QA_KINDS = {"count": "image-count", "direction": "video-direction"}
GENERAL_QUESTIONS: dict[str, tuple[str, ...]] = {
    "colour": ("What colour is the shape?", "What color is the shape?"),
    "shape": ("What shape is shown?", "What shape is in the picture?"),
    "size": ("Is the shape small or large?",),
}
"""The general probe's questions (plain, as in the base model's held-out pretraining evaluation)."""


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _qa_row(row_id: str, media: dict[str, str], prompt: str, answer: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {"id": row_id,
            "messages": [{"role": "user", "content": [media, {"type": "text", "text": prompt}]},
                         {"role": "assistant", "content": [{"type": "text", "text": answer}]}],
            "answer": answer, "meta": meta}


def build_classify(out: Path, num_train: int, num_test: int, seed: int) -> dict[str, Path]:
    """Shapes classification over all 24 classes; train and test images come from different seeds."""
    from mmsft.data.shapes import CLASSNAMES, generate_images
    from tasks.image_classification.builder import make_row
    from tasks.image_classification.prompts import question_prefix

    paths = {}
    for split, count, stream in (("train", num_train, 1000 + seed), ("test", num_test, 2000 + seed)):
        per_class = -(-count // len(CLASSNAMES))
        images = generate_images(per_class, seed=stream)
        random.Random(f"continual-classify-{split}-{seed}").shuffle(images)
        (out / "images").mkdir(parents=True, exist_ok=True)
        rows = []
        for index, (image, label, _scene) in enumerate(images[:count]):
            ref = f"images/{split}-{index:05d}.png"
            image.save(out / ref, format="PNG")
            options = list(CLASSNAMES)
            random.Random(f"continual-classify-options-{split}-{seed}-{index}").shuffle(options)
            row = make_row(f"classify-{split}-{index:05d}", ref, CLASSNAMES[label], label, options, "sft", "train",
                           "all", prefix=question_prefix("shapes"))
            row["meta"]["choices"] = options
            rows.append(row)
        paths[split] = _write_jsonl(out / f"{split}.jsonl", rows)
    return paths


def build_shapes_qa(task: str, out: Path, num_train: int, num_test: int, seed: int,
                    video_frames: int = 2) -> dict[str, Path]:
    """Shapes-world QA of one kind (count or direction) at 112 px, with the answer set listed in the prompt.

    Clips have ``video_frames`` frames (default 2: the first and last position, one temporal patch of Qwen-VL)."""
    from mmsft.data.shapes import ANSWERS, generate_shapes_qa

    kind = QA_KINDS[task]
    info = generate_shapes_qa(out, num_train, num_test, seed=seed, image_size=112, kinds=[kind],
                              video_frames=video_frames)
    paths = {}
    for split, source in (("train", "train"), ("test", "eval")):
        rows = _read_jsonl(Path(info[source]))
        for row in rows:
            options = list(ANSWERS[kind])
            random.Random(f"continual-{task}-{row['id']}").shuffle(options)
            row["messages"][0]["content"][1]["text"] += LIST_SUFFIX.format(options=", ".join(options))
            row["meta"]["choices"] = options
            row["id"] = f"{task}-{row['id']}"
        paths[split] = _write_jsonl(out / f"{split}.jsonl", rows)
    Path(info["eval"]).unlink()
    return paths


def build_vgrp_cell(out: Path, num_train: int, num_test: int, seed: int, image_px: int = 112) -> dict[str, Path]:
    """VGRP cell-at perception probes on 4×4 Sudoku boards, answers round-robin over the choices."""
    from PIL import Image

    from envs.vgrp.probes import cell_at_probe
    from envs.vgrp.registry import get_puzzle
    from envs.vgrp.render import render_image

    puzzle = get_puzzle("sudoku")
    paths = {}
    (out / "images").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", num_train), ("test", num_test)):
        rng = random.Random(f"continual-vgrp-cell-{split}-{seed}")
        rows = []
        for index in range(count):
            for _ in range(200):  # draw (board, cell) until the answer is the scheduled symbol
                inst = puzzle.generate(4, rng.getrandbits(31), None, "easy")
                probe = cell_at_probe(puzzle, inst, rng)
                if probe["answer"] == probe["choices"][index % len(probe["choices"])]:
                    break
            ref = f"images/{split}-{index:05d}.png"
            Image.fromarray(render_image(puzzle, inst, px=image_px)).save(out / ref, format="PNG")
            r, c = probe["cell"]
            options = list(probe["choices"])
            prompt = (f"What is at cell ({r},{c}) of the Sudoku board (row {r}, column {c}, indexing from 0)? "
                      "'*' means the cell is empty." + LIST_SUFFIX.format(options=", ".join(options)))
            rows.append(_qa_row(f"vgrp-cell-{split}-{index:05d}", {"type": "image", "image": ref}, prompt,
                                probe["answer"], {"kind": "vgrp-cell", "cell": [r, c], "choices": options,
                                                  "level_seed": inst.seed}))
        paths[split] = _write_jsonl(out / f"{split}.jsonl", rows)
    return paths


def build_sokoban(out: Path, num_train: int, num_test: int, seed: int) -> dict[str, Path]:
    """Sokoban next-move rows (6×6, one box, text grid) from the puzzle builder; the answer is verified."""
    from tasks.puzzles.build import BuildConfig, build_sokoban as build

    paths = {}
    for split, count in (("train", num_train), ("test", num_test)):
        build(BuildConfig(world="sokoban", out=out, split=split, format="step", num=count, seed=seed))
        paths[split] = out / f"{split}.jsonl"
    return paths


BUILDERS: dict[str, Callable[[Path, int, int, int], dict[str, Path]]] = {
    "classify": build_classify,
    "count": lambda out, n, m, s: build_shapes_qa("count", out, n, m, s),
    "direction": lambda out, n, m, s: build_shapes_qa("direction", out, n, m, s),
    "vgrp-cell": build_vgrp_cell,
    "sokoban": build_sokoban,
}


def build_general(out: Path, num: int, seed: int) -> Path:
    """Plain attribute questions (colour / shape / size, round-robin) on classification-world images."""
    from mmsft.data.shapes import CLASS_ATTRIBUTES, render, sample_scene

    rng = random.Random(f"continual-general-{seed}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    kinds = tuple(GENERAL_QUESTIONS)
    rows = []
    for index in range(num):
        colour, shape = CLASS_ATTRIBUTES[rng.randrange(len(CLASS_ATTRIBUTES))]
        scene = sample_scene(rng, colour, shape)
        kind = kinds[index % len(kinds)]
        ref = f"images/general-{index:05d}.png"
        render(scene).save(out / ref, format="PNG")
        answer = {"colour": scene.colour, "shape": scene.shape, "size": scene.size}[kind]
        rows.append(_qa_row(f"general-{index:05d}", {"type": "image", "image": ref},
                            rng.choice(GENERAL_QUESTIONS[kind]), str(answer), {"kind": kind}))
    return _write_jsonl(out / "test.jsonl", rows)


def general_scenes(num: int, seed: int) -> list[Any]:
    """The scenes :func:`build_general` draws (same stream, without rendering)."""
    from mmsft.data.shapes import CLASS_ATTRIBUTES, sample_scene

    rng = random.Random(f"continual-general-{seed}")
    kinds = tuple(GENERAL_QUESTIONS)
    scenes = []
    for index in range(num):
        colour, shape = CLASS_ATTRIBUTES[rng.randrange(len(CLASS_ATTRIBUTES))]
        scenes.append(sample_scene(rng, colour, shape))
        rng.choice(GENERAL_QUESTIONS[kinds[index % len(kinds)]])  # keep the stream aligned with build_general
    return scenes


def classify_test_scenes(num_test: int, seed: int) -> list[Any]:
    """The scene pool :func:`build_classify` draws its held-out images from."""
    from mmsft.data.shapes import CLASSNAMES, class_scenes

    per_class = -(-num_test // len(CLASSNAMES))
    return [scene for name in CLASSNAMES for scene in class_scenes(name, per_class, 2000 + seed)]


def build_attribute_replay(out: Path, num: int, seed: int) -> Path:
    """Attribute questions in the base model's instruction formats (plain, option list + direct answer), including
    "What colour and shape is it?": mixed into the format warm-up so it keeps what the base knows."""
    from mmsft.data.shapes import CLASS_ATTRIBUTES, SIZES, render, sample_scene

    rng = random.Random(f"continual-replay-{seed}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    colours = sorted({c for c, _ in CLASS_ATTRIBUTES})
    shapes = sorted({s for _, s in CLASS_ATTRIBUTES})
    kinds = (*GENERAL_QUESTIONS, "colour_shape")
    rows = []
    for index in range(num):
        colour, shape = CLASS_ATTRIBUTES[rng.randrange(len(CLASS_ATTRIBUTES))]
        scene = sample_scene(rng, colour, shape)
        kind = kinds[index % len(kinds)]
        ref = f"images/replay-{index:05d}.png"
        render(scene).save(out / ref, format="PNG")
        if kind == "colour_shape":
            question, answer, options = "What colour and shape is it?", f"{colour} {shape}", None
        else:
            question = rng.choice(GENERAL_QUESTIONS[kind])
            answer = {"colour": colour, "shape": shape, "size": scene.size}[kind]
            options = list({"colour": colours, "shape": shapes, "size": list(SIZES)}[kind])
        if options is not None and rng.random() < 0.5:
            rng.shuffle(options)
            question += LIST_SUFFIX.format(options=", ".join(options))
        rows.append(_qa_row(f"replay-{index:05d}", {"type": "image", "image": ref}, question, str(answer),
                            {"kind": kind}))
    return _write_jsonl(out / "train.jsonl", rows)


def write_format_rows(task: str, source: Path, out: Path, num: int, seed: int) -> Path:
    """``num`` rows of ``source`` (the task's spare training rows) whose target is a random option of the prompt.

    Sokoban rows get a random move in the answer tags of their prompt; the other tasks a random entry of their
    ``meta["choices"]``. Media references are rewritten relative to ``out``'s folder.
    """
    rows = _read_jsonl(source)[-num:]
    rng = random.Random(f"continual-format-{task}-{seed}")
    out.parent.mkdir(parents=True, exist_ok=True)
    for row in rows:
        if task == "sokoban":
            target = f"<answer>{rng.choice(row['answer']['actions'])}</answer>"
        else:
            target = rng.choice(row["meta"]["choices"])
        row["messages"][-1]["content"] = [{"type": "text", "text": target}]
        row["id"] = f"format-{task}-{row['id']}"
        for part in row["messages"][0]["content"]:
            for key in ("image", "video"):
                if key in part:
                    part[key] = str((source.parent / part[key]).resolve())
    with out.open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out


__all__ = ["BUILDERS", "GENERAL_QUESTIONS", "LIST_SUFFIX", "TASKS", "build_classify", "build_general",
           "build_shapes_qa", "build_sokoban", "build_vgrp_cell", "write_format_rows"]
