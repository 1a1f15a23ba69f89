"""Pretrain the tiny Qwen2.5-VL *base* model of the shapes-world classification study.

CLS-RL (Li et al., arXiv 2503.16188) starts few-shot SFT and RL from a pretrained VLM (Qwen2-VL-2B) that already
has visual features. The embedded study needs the same: this script builds a tiny Qwen2.5-VL with
:func:`mmsft.models.tiny.build_tiny` and trains it with the mmsft SFT trainer on shapes-world **captions and
attribute questions** (what colour, what shape, small or large, size and shape, describe the image). Like the
instruction-tuned VLM the paper starts from, it also follows instruction *formats* on those attribute questions:
"Please choose one from list [ ... ]" over attribute values, "Please directly output the answer", and
"<think> ... </think> <answer> ... </answer>" tags. It never shows the classification question ("What type of
object is in the photo?") or option lists of class names. One attribute question, "What colour and shape is it?",
is answered with the colour-shape phrase ("red circle"): like the real instruction-tuned base, the model can name
what it sees, so zero-shot classification is above zero and RL has reward variance to learn from (with no such
phrase in pretraining, every GRPO group scored 0 and neither RL method could move — measured). Learning the
classification prompt, its option lists and the new classes is left to the few-shot stage.

Usage::

    python scripts/pretrain_shapes_base.py [--out assets/shapes_base] [--steps 2200] [--seed 0]

Seeded and reproducible (1 torch thread). The folder written is a normal HF model folder plus
``pretrain_report.json`` (steps, wall time, held-out attribute-QA accuracy per question kind).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from mmsft.data import shapes as sw  # noqa: E402

MODEL_OVERRIDES: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vision_hidden_size": 64,
    "vision_intermediate_size": 128,
    "vision_depth": 2,
}
"""Size of the base model (a few MB of float32 weights; the defaults of ``build_tiny`` are 64 wide)."""

DEFAULT_STEPS = 2600
DEFAULT_BATCH = 16
DEFAULT_LR = 1e-3
DEFAULT_TRAIN_IMAGES = 3000
DEFAULT_EVAL_IMAGES = 240

QUESTIONS: dict[str, tuple[str, ...]] = {
    "colour": ("What colour is the shape?", "What color is the shape?"),
    "shape": ("What shape is shown?", "What shape is in the picture?"),
    "size": ("Is the shape small or large?",),
    "size_shape": ("What size and shape is it?",),
    "colour_shape": ("What colour and shape is it?", "What color and shape is it?"),
    "caption": ("Describe the image.",),
}
"""Pretraining question kinds and phrasings (attribute questions and a caption request)."""

KIND_WEIGHTS: dict[str, int] = {"colour": 1, "shape": 2, "size": 1, "size_shape": 1, "colour_shape": 1, "caption": 1}

LIST_SUFFIX = "Please choose one from list [ {options}]."
DIRECT_SUFFIX = "\n Please directly output the answer."
THINK_SUFFIX = "\n Please output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
FORMATS: tuple[str, ...] = ("plain", "list", "list_direct", "think", "list_think")
"""Instruction formats applied to training questions (uniformly); held-out evaluation questions stay plain."""
"""Relative frequency of each question kind in the training set (shape is the slowest attribute to learn)."""


def _answer(kind: str, scene: sw.Scene) -> str:
    if kind == "colour":
        return scene.colour
    if kind == "shape":
        return scene.shape
    if kind == "size":
        return scene.size
    if kind == "size_shape":
        return f"{scene.size} {scene.shape}"
    if kind == "colour_shape":
        return f"{scene.colour} {scene.shape}"
    return f"The {scene.shape} is {scene.colour} and {scene.size}."


def _choices(kind: str) -> list[str]:
    shapes = sorted({shape for _, shape in sw.CLASS_ATTRIBUTES})
    colours = sorted({colour for colour, _ in sw.CLASS_ATTRIBUTES})
    return {"colour": colours, "shape": shapes, "size": list(sw.SIZES),
            "size_shape": [f"{size} {shape}" for size in sw.SIZES for shape in shapes]}[kind]


def instruct(kind: str, question: str, answer: str, scene: sw.Scene, fmt: str, rng: random.Random) -> tuple[str, str]:
    """Apply an instruction format to an attribute question: option list over attribute values (shuffled, answer
    included), direct-answer suffix, or thinking + answer tags (the caption is the thought)."""
    if kind == "caption" or fmt == "plain":
        return question, answer
    prompt = question
    if fmt.startswith("list") and kind != "colour_shape":  # never an option list of class phrases
        options = _choices(kind)
        rng.shuffle(options)
        prompt += "\n" + LIST_SUFFIX.format(options=", ".join(options))
    if fmt.endswith("direct"):
        prompt += DIRECT_SUFFIX
    if fmt.endswith("think"):
        prompt += THINK_SUFFIX
        caption = f"The {scene.shape} is {scene.colour} and {scene.size}."
        return prompt, f"<think> {caption} </think> <answer> {answer} </answer>"
    return prompt, answer


def write_pretraining_data(out_dir: Path, num_train: int, num_eval: int, seed: int,
                           image_size: int = sw.IMAGE_SIZE) -> dict[str, str]:
    """Write ``train.jsonl`` / ``eval.jsonl`` of attribute QA and captions (one question per image) with PNGs.

    Images are drawn with their own random stream (``"pretrain-<seed>"``), uniformly over all classes, so they are
    disjoint from the few-shot images of :func:`tasks.image_classification.builder.build_fewshot_splits`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "images").mkdir(exist_ok=True)
    paths = {}
    kinds = tuple(QUESTIONS)
    weighted = [k for k in kinds for _ in range(KIND_WEIGHTS[k])]
    for split, count in (("train", num_train), ("eval", num_eval)):
        rng = random.Random(f"pretrain-{seed}-{split}")
        rows = []
        for index in range(count):
            colour, shape = sw.CLASS_ATTRIBUTES[rng.randrange(len(sw.CLASS_ATTRIBUTES))]
            scene = sw.sample_scene(rng, colour, shape, image_size)
            kind = kinds[index % len(kinds)] if split == "eval" else rng.choice(weighted)
            question = rng.choice(QUESTIONS[kind])
            relative = f"images/{split}-{index:06d}.png"
            sw.render(scene, image_size).save(out_dir / relative, format="PNG")
            answer = _answer(kind, scene)
            if split == "train":
                question, answer = instruct(kind, question, answer, scene, rng.choice(FORMATS), rng)
            rows.append({"id": f"pretrain-{split}-{index:06d}",
                         "messages": [{"role": "user", "content": [{"type": "image", "image": relative},
                                                                   {"type": "text", "text": question}]},
                                      {"role": "assistant", "content": [{"type": "text", "text": answer}]}],
                         "answer": answer, "meta": {"kind": kind, "class": scene.classname}})
        path = out_dir / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths[split] = str(path)
    return paths


def pretrain_shapes_base(out: str | os.PathLike[str], steps: int = DEFAULT_STEPS, seed: int = 0,
                         batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR,
                         num_train: int = DEFAULT_TRAIN_IMAGES, num_eval: int = DEFAULT_EVAL_IMAGES,
                         work_dir: str | os.PathLike[str] | None = None, progress: bool = False,
                         image_size: int = sw.IMAGE_SIZE, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build, pretrain and save the shapes-world base model into ``out``; return the report it also saves.

    Args:
        out: destination model folder (replaced if it holds a model, refused if it holds anything else).
        steps, batch_size, lr: SFT steps, samples per step and the constant AdamW learning rate.
        seed: seeds the model initialisation, the data and the data order.
        num_train, num_eval: images in the pretraining set and in the held-out attribute-QA set.
        work_dir: scratch folder for data and the run directory (a temporary folder, removed, if ``None``).
        progress: show the trainer's progress bar.
        image_size: side of the pretraining images (a multiple of 28).
        overrides: ``build_tiny`` overrides applied on top of :data:`MODEL_OVERRIDES`.
    """
    import torch

    from mmsft.config import load_config
    from mmsft.models.tiny import build_tiny
    from mmsft.train.trainer import Trainer

    torch.set_num_threads(1)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise FileExistsError(f"{out} is not empty and holds no model (config.json); refusing to overwrite it")
    scratch = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="shapes-base-"))
    started = time.perf_counter()
    try:
        model_overrides = {**MODEL_OVERRIDES, **(overrides or {})}
        data = write_pretraining_data(scratch / "data", num_train, num_eval, seed, image_size)
        init_dir = build_tiny("qwen2.5-vl", scratch / "init", seed=seed, **model_overrides)
        run_dir = scratch / "run"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        cfg = load_config(None, [
            f"model.name_or_path={init_dir}", f"data.train_path={data['train']}", f"data.eval_path={data['eval']}",
            f"train.output_dir={run_dir}", f"train.max_steps={steps}", f"train.micro_batch_size={batch_size}",
            f"train.seed={seed}", "train.torch_threads=1", "train.tensorboard=false", "train.resume=never",
            f"train.progress={str(progress).lower()}", "train.logging_steps=50", "train.save_total_limit=1",
            f"optim.lr={lr}", "optim.scheduler=constant", "optim.weight_decay=0.0",
            "eval.batch_size=48", "eval.max_new_tokens=12", "eval.match=exact",
        ])
        result = Trainer(cfg).train()
        elapsed = time.perf_counter() - started
        tmp_out = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent if out.parent.exists() else None))
        shutil.copytree(result.final_model_dir, tmp_out, dirs_exist_ok=True)
        report = {
            "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr, "num_train_images": num_train,
            "num_eval_images": num_eval, "image_size": image_size, "model_overrides": model_overrides,
            "wall_time_s": round(elapsed, 1),
            "attribute_qa_accuracy": {k.removeprefix("eval/"): round(v, 4) for k, v in result.metrics.items()
                                      if k.startswith("eval/accuracy")},
            "final_train_loss": round(float(result.metrics.get("train/loss", float("nan"))), 4),
            "torch": torch.__version__,
        }
        (tmp_out / "pretrain_report.json").write_text(json.dumps(report, indent=2) + "\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp_out, out)
        return report
    finally:
        if work_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--override {item!r}: expected KEY=VALUE, e.g. vision_depth=3")
        out[key] = json.loads(raw) if raw[:1] in "-0123456789[{tf" else raw
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "assets" / "shapes_base"), help="model folder to write")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="SFT steps")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="samples per step")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help="constant learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of model, data and order")
    parser.add_argument("--num-train", type=int, default=DEFAULT_TRAIN_IMAGES, help="pretraining images")
    parser.add_argument("--num-eval", type=int, default=DEFAULT_EVAL_IMAGES, help="held-out attribute-QA images")
    parser.add_argument("--work-dir", default=None, help="keep data and run directory here (default: temporary)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--image-size", type=int, default=sw.IMAGE_SIZE, help="image side in pixels (multiple of 28)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra build_tiny override, e.g. vision_depth=3 (repeatable)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    report = pretrain_shapes_base(args.out, steps=args.steps, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
                                  num_train=args.num_train, num_eval=args.num_eval, work_dir=args.work_dir,
                                  progress=args.progress, image_size=args.image_size,
                                  overrides=_parse_overrides(args.override))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
