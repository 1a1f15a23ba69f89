"""Pretrain the *thinking-capable* tiny Qwen2.5-VL base: a stand-in for an instruct VLM on our image and video worlds.

CLS-RL (Li et al., arXiv 2503.16188) and VideoRFT / Video-R1 (arXiv 2505.12434, 2503.21776) start RL from an
instruction-tuned VLM that already answers in both formats it is asked for: directly ("Please directly output the
answer") and thinking first ("<think> ... </think> <answer> ... </answer>"). GRPO learns only from reward variance
inside a rollout group, so a base that never emits the requested format gives every group the same reward and RL
cannot move (the CLS-RL thinking row of the main job was 0.000 for that reason with ``assets/shapes_base``, whose
thinking examples only ever answered with one attribute).

This script continues pretraining of the shipped shapes-world base (``assets/shapes_base``, built by
``scripts/pretrain_shapes_base.py``) with the mmsft SFT trainer on a mixture of

* **shapes-world images** (:mod:`mmsft.data.shapes`): colour, shape and size questions, *naming* questions ("What
  colour and shape is it?" → ``red circle``), optionally with an option list (attribute values, or colour-shape
  phrases for naming), and captions; and
* **video-world clips** (:mod:`tasks.video.world`): the world's temporal question kinds in all five problem types,
  "describe the video" and "which objects are in the video" (on clips of their own),

each row in one of two formats drawn at random: **answer-only** (plain or with a direct-answer instruction; the
target is the answer) or **think-then-answer** (a thinking instruction — CLS-RL's training instruction or a
paraphrase; the target is a chain of thought that states the visual facts, then the answer in tags).

No evaluation question or image is trained on: images and clips come from their own random streams
(``"thinking-base-<seed>-..."``) and :func:`check_disjoint` verifies, by scene and clip identity, that none equals a
few-shot / test image of the CLS-RL study or a train / eval clip of the video study for study seeds
:data:`STUDY_SEEDS`; prompts never contain the study's classification prefix or its *evaluation* instructions
(:data:`FORBIDDEN_PROMPT_TEXT`). The report records these checks and the zero-shot measurements.

Usage::

    python scripts/pretrain_thinking_base.py [--out assets/thinking_base] [--steps 1500] [--seed 0]

Seeded and reproducible (one torch thread). The folder written is a normal HF model folder plus
``pretrain_report.json`` (settings, wall time, disjointness checks, held-out zero-shot accuracy and format rate in
both formats, on images and clips).
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
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from mmsft.data import shapes as sw  # noqa: E402
from tasks.image_classification import prompts as cls_prompts  # noqa: E402
from tasks.video import prompts as video_prompts  # noqa: E402
from tasks.video import world as vw  # noqa: E402

DEFAULT_STEPS = 900
DEFAULT_BATCH = 16
DEFAULT_LR = 1e-3
DEFAULT_IMAGES = 4000
DEFAULT_CLIPS = 2000
HELD_OUT_IMAGES = 96
HELD_OUT_CLIPS = 70
VIDEO_FRAMES = 8
VIDEO_MAX_PIXELS = 128 * 28 * 28
STUDY_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
"""Study seeds whose evaluation (and training) images / clips the pretraining data is checked to avoid."""
STUDY_SIZES = {"cls_train_per_class": 16, "cls_test_per_class": 10, "video_train": 700, "video_eval": 140}
"""The largest pools the studies draw from (``ShapesWorldSource`` defaults; ``StudySettings`` defaults)."""
HELD_OUT_SEED = 977
"""Seed of the held-out classification split used to measure zero-shot accuracy in the report (not a study seed)."""

IMAGE_QUESTIONS: dict[str, tuple[str, ...]] = {
    "colour": ("What colour is the shape?", "What color is the shape?"),
    "shape": ("What shape is shown?", "What shape is in the picture?"),
    "size": ("Is the shape small or large?",),
    "name": ("What colour and shape is it?", "What color and shape is it?", "Which coloured shape is this?",
             "Name the shape and its colour.", "What is shown in the image?"),
    "caption": ("Describe the image.",),
}
"""Image question kinds and phrasings (``name`` answers with the colour-shape phrase, e.g. ``red circle``)."""
IMAGE_WEIGHTS: dict[str, int] = {"colour": 1, "shape": 2, "size": 1, "name": 3, "caption": 1}

DIRECT_SUFFIXES: tuple[str, ...] = ("", cls_prompts.NOTHINK_TRAIN.removeprefix("{Question}"),
                                    " Answer with the answer only.")
"""Answer-only instructions ("" = the bare question)."""
THINK_SUFFIXES: tuple[str, ...] = (cls_prompts.THINK_TRAIN.removeprefix("{Question}"),
                                   " Think first: write the thinking process in <think> </think> tags, then the "
                                   "final answer in <answer> </answer> tags.")
"""Think-then-answer instructions for images (CLS-RL's *training* instruction and a paraphrase)."""
LIST_TEMPLATE = "\nPlease choose one from list [ {options}]."
FORBIDDEN_PROMPT_TEXT: tuple[str, ...] = (
    cls_prompts.DATASET_PREFIXES["shapes"], cls_prompts.DEFAULT_PREFIX,
    cls_prompts.THINK_EVAL.removeprefix("{Question}"), cls_prompts.NOTHINK_EVAL.removeprefix("{Question}"),
)
"""Text of the CLS-RL study's evaluation prompts that never appears in a pretraining prompt."""
VIDEO_KINDS: tuple[str, ...] = (*vw.KINDS, "describe", "objects")


# ---------------------------------------------------------------------------------------------- image rows
def _caption(scene: sw.Scene) -> str:
    return f"The {scene.shape} is {scene.colour} and {scene.size}."


def image_example(scene: sw.Scene, kind: str, think: bool, rng: random.Random) -> tuple[str, str, str]:
    """(prompt, target, answer) of one image question of ``kind`` in the think or answer-only format."""
    answer = {"colour": scene.colour, "shape": scene.shape, "size": scene.size or "",
              "name": scene.classname, "caption": _caption(scene)}[kind]
    prompt = rng.choice(IMAGE_QUESTIONS[kind])
    if kind == "caption":
        return prompt, answer, answer
    if rng.random() < 0.5:  # an option list over the values this question can take (answer included)
        values = {"colour": list(sw.COLOURS), "shape": list(sw.SHAPES), "size": list(sw.SIZES),
                  "name": list(sw.CLASSNAMES)}[kind]
        others = [v for v in values if v != answer]
        options = [answer, *rng.sample(others, rng.randint(1, len(others)))]
        rng.shuffle(options)
        prompt += LIST_TEMPLATE.format(options=", ".join(options))
    if think:
        return (prompt + rng.choice(THINK_SUFFIXES),
                f"<think> {_caption(scene)} </think> <answer> {answer} </answer>", answer)
    return prompt + rng.choice(DIRECT_SUFFIXES), answer, answer


def image_scenes(count: int, seed: int, split: str) -> list[sw.Scene]:
    """``count`` classification-style scenes (nuisances on), classes uniform, from stream ``thinking-base-...``."""
    rng = random.Random(f"thinking-base-{seed}-image-{split}")
    return [sw.sample_scene(rng, *sw.CLASS_ATTRIBUTES[rng.randrange(len(sw.CLASS_ATTRIBUTES))])
            for _ in range(count)]


# ---------------------------------------------------------------------------------------------- video rows
def video_question(clip: vw.Clip, kind: str, rng: random.Random) -> tuple[str, str, list[str], str, str] | None:
    """(problem, problem type, options, answer, reasoning step) of a clip question, or None when it cannot be asked."""
    if kind == "describe":
        answer = " ".join(clip.description())
        return "Describe the video.", "free-form", [], answer, answer
    if kind == "objects":
        a, b = clip.movers
        answer = f"{vw._article(a.name)} and {vw._article(b.name)}"
        return "Which objects are in the video?", "free-form", [], answer, f"The objects are {answer}."
    made = vw.make_question(clip, kind, rng)
    if made is None:
        return None
    problem, options, answer, step = made
    return problem, vw.KINDS[kind], list(options), answer, step


def video_prompt(clip: vw.Clip, question: tuple[str, str, list[str], str, str], instruction: str) -> tuple[str, str]:
    """(prompt, target) of a clip question with ``instruction``: ``template`` (the papers' question template, think
    target), ``think`` (a short thinking instruction, think target) or an answer-only suffix of
    :data:`DIRECT_SUFFIXES` (target = the answer)."""
    problem, problem_type, options, answer, step = question
    if instruction in ("template", "think"):
        prompt = video_prompts.user_prompt(problem, problem_type, options, style="video-r1") \
            if instruction == "template" else \
            video_prompts.question_text(problem, problem_type, options, "video-r1") + THINK_SUFFIXES[0]
        return prompt, video_prompts.sft_target(vw.cot(clip, step, answer), f"<answer>{answer}</answer>")
    if instruction not in DIRECT_SUFFIXES:
        raise ValueError(f"unknown instruction {instruction!r}; expected template, think or one of {DIRECT_SUFFIXES}")
    return video_prompts.question_text(problem, problem_type, options, "video-r1") + instruction, answer


def video_clips(count: int, seed: int, split: str, kinds: Sequence[str] = VIDEO_KINDS,
                think_rate: float = 0.5) -> list[tuple[vw.Clip, str, tuple[str, str, list[str], str, str], str]]:
    """``count`` (clip, kind, question, instruction) from stream ``thinking-base-<seed>-video-<split>``; kinds
    round-robin, a clip that cannot ask its kind is redrawn; ``think_rate`` of the rows get the short thinking
    instruction, the rest an answer-only suffix (``describe`` is always answer-only). The papers' long question
    template is not trained on (it is 300 tokens of the tiny tokenizer and would dominate the step time); the
    report measures how the base follows it anyway."""
    rng = random.Random(f"thinking-base-{seed}-video-{split}")
    out: list[tuple[vw.Clip, str, tuple[str, str, list[str], str, str], str]] = []
    while len(out) < count:
        kind = kinds[len(out) % len(kinds)]
        clip = vw.sample_clip(rng, with_word=kind == "word" or rng.random() < 0.2)
        think = kind != "describe" and rng.random() < think_rate
        instruction = "think" if think else rng.choice(DIRECT_SUFFIXES)
        question = video_question(clip, kind, rng)
        if question is not None:
            out.append((clip, kind, question, instruction))
    return out


# ---------------------------------------------------------------------------------------------- data files
def _row(row_id: str, media: dict[str, str], prompt: str, target: str, answer: str,
         meta: dict[str, Any]) -> dict[str, Any]:
    return {"id": row_id, "messages": [{"role": "user", "content": [media, {"type": "text", "text": prompt}]},
                                       {"role": "assistant", "content": [{"type": "text", "text": target}]}],
            "answer": answer, "meta": meta}


def write_pretraining_data(out_dir: str | os.PathLike[str], num_images: int, num_clips: int, seed: int,
                           split: str = "train") -> Path:
    """Write ``<split>.jsonl`` (images and clips, each row in a random format) with ``images/`` and ``videos/``."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"thinking-base-{seed}-rows-{split}")
    kinds = [k for k in IMAGE_QUESTIONS for _ in range(IMAGE_WEIGHTS[k])]
    rows = []
    for index, scene in enumerate(image_scenes(num_images, seed, split)):
        kind, think = rng.choice(kinds), rng.random() < 0.5
        prompt, target, answer = image_example(scene, kind, think, rng)
        think = think and kind != "caption"  # a caption request is always answered directly
        relative = f"images/{split}-{index:06d}.png"
        sw.render(scene).save(out / relative, format="PNG")
        rows.append(_row(f"{split}-image-{index:06d}", {"type": "image", "image": relative}, prompt, target, answer,
                         {"world": "image", "kind": kind, "format": "think" if think else "answer",
                          "class": scene.classname}))
    for index, (clip, kind, question, instruction) in enumerate(video_clips(num_clips, seed, split)):
        prompt, target = video_prompt(clip, question, instruction)
        relative = f"videos/{split}-{index:06d}.mp4"
        sw.write_mp4(out / relative, clip.frames(VIDEO_FRAMES), fps=vw.FPS)
        think = instruction in ("template", "think")
        rows.append(_row(f"{split}-video-{index:06d}", {"type": "video", "video": relative}, prompt, target,
                         question[3], {"world": "video", "kind": kind, "format": "think" if think else "answer",
                                       "problem_type": question[1]}))
    random.Random(f"thinking-base-{seed}-shuffle-{split}").shuffle(rows)
    path = out / f"{split}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- disjointness
def study_scenes(seeds: Sequence[int] = STUDY_SEEDS) -> set[sw.Scene]:
    """Every train-pool and test scene ``ShapesWorldSource(seed=s)`` can draw for the given seeds."""
    out: set[sw.Scene] = set()
    for seed in seeds:
        for name in sw.CLASSNAMES:
            out.update(sw.class_scenes(name, STUDY_SIZES["cls_train_per_class"], seed))
            out.update(sw.class_scenes(name, STUDY_SIZES["cls_test_per_class"], seed + 10_000))
    return out


def study_clips(seeds: Sequence[int] = STUDY_SEEDS, num_train: int = STUDY_SIZES["video_train"],
                num_eval: int = STUDY_SIZES["video_eval"]) -> set[vw.Clip]:
    """Every clip ``generate_world(num_train, num_eval, seed)`` samples (also those it rejects), without writing."""
    sampled: set[vw.Clip] = set()
    original_sample, original_write = vw.sample_clip, vw.write_mp4

    def recording(rng: random.Random, with_word: bool) -> vw.Clip:
        clip = original_sample(rng, with_word)
        sampled.add(clip)
        return clip

    vw.sample_clip, vw.write_mp4 = recording, lambda *a, **k: None  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for seed in seeds:
                vw.generate_world(tmp, num_train, num_eval, seed=seed)
    finally:
        vw.sample_clip, vw.write_mp4 = original_sample, original_write  # type: ignore[assignment]
    return sampled


def check_disjoint(num_images: int, num_clips: int, seed: int, seeds: Sequence[int] = STUDY_SEEDS,
                   video_sizes: tuple[int, int] = (STUDY_SIZES["video_train"], STUDY_SIZES["video_eval"])
                   ) -> dict[str, Any]:
    """Raise ValueError if a pretraining scene / clip (train and held-out splits) equals a study scene / clip;
    ``video_sizes`` are the train and eval clip counts of the video worlds checked (default: the study's)."""
    scenes = set(image_scenes(num_images, seed, "train")) | set(image_scenes(HELD_OUT_IMAGES, seed, "heldout"))
    clips = {c for c, *_ in video_clips(num_clips, seed, "train")}
    held_out = {c for c, *_ in video_clips(HELD_OUT_CLIPS, seed, "heldout")}
    if clips & held_out:
        raise ValueError(f"{len(clips & held_out)} held-out clips repeat a pretraining clip")
    clips |= held_out
    scene_overlap, clip_overlap = scenes & study_scenes(seeds), clips & study_clips(seeds, *video_sizes)
    if scene_overlap or clip_overlap:
        raise ValueError(f"pretraining data overlaps the studies' data: {len(scene_overlap)} images, "
                         f"{len(clip_overlap)} clips (study seeds {list(seeds)})")
    return {"study_seeds": list(seeds), "pretraining_scenes": len(scenes), "pretraining_clips": len(clips),
            "overlapping_images": 0, "overlapping_clips": 0}


def check_prompts(path: str | os.PathLike[str]) -> int:
    """Raise ValueError if a prompt of the JSONL file contains study evaluation text; returns the rows checked."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    for number, row in enumerate(rows, 1):
        prompt = row["messages"][0]["content"][1]["text"]
        hit = next((text for text in FORBIDDEN_PROMPT_TEXT if text in prompt), None)
        if hit is not None:
            raise ValueError(f"{path}:{number}: pretraining prompt contains study evaluation text {hit!r}")
    return len(rows)


def write_video_heldout(out_dir: str | os.PathLike[str], seed: int, count: int = HELD_OUT_CLIPS) -> dict[str, Path]:
    """Held-out clips of the study's question kinds, written three times: ``heldout-video.think.jsonl`` (the short
    thinking instruction of pretraining), ``heldout-video.template.jsonl`` (the papers' question template, as the
    video study prompts) and ``heldout-video.answer.jsonl`` (direct-answer suffix)."""
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {"think": [], "template": [], "answer": []}
    for index, (clip, kind, question, _) in enumerate(video_clips(count, seed, "heldout", kinds=tuple(vw.KINDS))):
        relative = f"videos/heldout-{index:06d}.mp4"
        sw.write_mp4(out / relative, clip.frames(VIDEO_FRAMES), fps=vw.FPS)
        for mode, instruction in (("think", "think"), ("template", "template"), ("answer", DIRECT_SUFFIXES[1])):
            prompt, target = video_prompt(clip, question, instruction)
            rows[mode].append(_row(f"heldout-video-{index:06d}", {"type": "video", "video": relative}, prompt,
                                   target, question[3], {"kind": kind, "problem_type": question[1],
                                                         "data_source": f"video-world/{kind}"}))
    paths = {}
    for mode, mode_rows in rows.items():
        paths[mode] = out / f"heldout-video.{mode}.jsonl"
        paths[mode].write_text("".join(json.dumps(r) + "\n" for r in mode_rows), encoding="utf-8")
    return paths


# ---------------------------------------------------------------------------------------------- measurement
def measure_zero_shot(model_dir: str | os.PathLike[str], work_dir: str | os.PathLike[str], seed: int = 0,
                      held_out_seed: int = HELD_OUT_SEED) -> dict[str, Any]:
    """Zero-shot accuracy and format rate of a model in both formats, greedy, on held-out data:

    * ``classification``: the CLS-RL study's evaluation prompts (shapes prefix, option lists of the half's classes)
      on a base-to-new split of seed ``held_out_seed`` (4 test images per class): ``think`` (thinking evaluation
      prompt, 48 new tokens; format = the full think/answer match of ``cls_format``) and ``answer`` (direct-answer
      evaluation prompt, 12 new tokens; format = no tags in the output);
    * ``video``: :func:`write_video_heldout` clips scored with VideoRFT's protocol (8 frames, 160 new tokens):
      ``think`` = the short thinking instruction and ``template`` = the papers' question template (format =
      think/answer match), ``answer`` = direct answer (the output is scored as the answer; format = no tags).
    """
    from mmsft.data.loaders import load_jsonl
    from mmsft.eval.generation import generate
    from mmsft.models.loading import build_adapter, load_model
    from tasks.image_classification.builder import ShapesWorldSource, build_fewshot_splits
    from tasks.image_classification.evaluation import evaluate_base_new
    from tasks.image_classification.rewards import is_think_answer_format
    from tasks.video.evaluation import summarize

    work = Path(work_dir)
    loaded = load_model(str(model_dir))
    adapter = build_adapter(loaded)
    report: dict[str, Any] = {"classification": {}, "video": {}}
    splits = build_fewshot_splits(ShapesWorldSource(test_per_class=4, seed=held_out_seed), work / "cls",
                                  k_shot=1, seed=held_out_seed, modes=("think", "nothink"),
                                  prefix=cls_prompts.question_prefix("shapes"))
    for mode, key, tokens in (("think", "think", 48), ("nothink", "answer", 12)):
        result = evaluate_base_new(loaded.model, adapter, splits.test_base[mode], splits.test_new[mode],
                                   batch_size=32, max_new_tokens=tokens)
        outputs = [r["prediction"] for r in result["predictions"]]
        formatted = [is_think_answer_format(o.strip()) if mode == "think" else ("<" not in o and bool(o.strip()))
                     for o in outputs]
        report["classification"][key] = {"base": round(result["base"], 4), "new": round(result["new"], 4),
                                          "hm": round(result["hm"], 4), "format": round(sum(formatted) / len(outputs), 4),
                                          "n": len(outputs), "example": outputs[0]}
    video = write_video_heldout(work / "video", seed)
    for mode, path in video.items():
        samples = load_jsonl(path)
        outputs = generate(loaded.model, adapter, samples, batch_size=16, max_new_tokens=160)
        scored = outputs if mode != "answer" else [f"<answer>{o.strip()}</answer>" for o in outputs]
        metrics, _ = summarize(samples, scored)
        fmt = metrics["format"] if mode != "answer" else sum("<" not in o and bool(o.strip()) for o in outputs) / len(
            outputs)
        report["video"][mode] = {"accuracy": round(metrics["accuracy"], 4), "format": round(fmt, 4),
                                 "n": len(outputs), "example": outputs[0],
                                 **{k: round(v, 4) for k, v in metrics.items() if k.startswith("accuracy/type/")}}
    return report


def measure_into_report(model_dir: str | os.PathLike[str], work_dir: str | os.PathLike[str],
                        seed: int = 0) -> dict[str, Any]:
    """Run :func:`measure_zero_shot` on ``model_dir`` and store it as ``zero_shot`` in its ``pretrain_report.json``
    (separate from training, so a measurement can be redone without retraining: ``--measure-only``)."""
    path = Path(model_dir) / "pretrain_report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    started = time.perf_counter()
    report["zero_shot"] = measure_zero_shot(model_dir, work_dir, seed)
    report["measure_s"] = round(time.perf_counter() - started, 1)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


# ---------------------------------------------------------------------------------------------- build
def default_init() -> Path:
    """The shipped shapes-world base (``assets/shapes_base``), rebuilt by its own script when missing."""
    from tasks.image_classification.base_model import ensure_shapes_base

    return ensure_shapes_base()


def pretrain_thinking_base(out: str | os.PathLike[str], steps: int = DEFAULT_STEPS, seed: int = 0,
                           batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR, num_images: int = DEFAULT_IMAGES,
                           num_clips: int = DEFAULT_CLIPS, init: str | os.PathLike[str] | None = None,
                           work_dir: str | os.PathLike[str] | None = None, progress: bool = False,
                           measure: bool = True) -> dict[str, Any]:
    """Check the data is disjoint from the studies', continue pretraining ``init`` on both worlds in both formats,
    save the model into ``out`` (replaced if it holds a model, refused if it holds anything else) and return the
    report it also saves as ``pretrain_report.json``."""
    import torch

    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    torch.set_num_threads(1)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise FileExistsError(f"{out} is not empty and holds no model (config.json); refusing to overwrite it")
    scratch = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="thinking-base-"))
    started = time.perf_counter()
    try:
        disjoint = check_disjoint(num_images, num_clips, seed)
        train_path = write_pretraining_data(scratch / "data", num_images, num_clips, seed)
        rows_checked = check_prompts(train_path)
        data_s = time.perf_counter() - started
        init_dir = Path(init) if init is not None else default_init()
        run_dir = scratch / "run"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        cfg = load_config(None, [
            f"model.name_or_path={init_dir}", f"data.train_path={train_path}", "data.max_length=1024",
            f"data.video_max_frames={VIDEO_FRAMES}", f"data.video_max_pixels={VIDEO_MAX_PIXELS}",
            f"train.output_dir={run_dir}", f"train.max_steps={steps}", f"train.micro_batch_size={batch_size}",
            f"train.seed={seed}", "train.torch_threads=1", "train.tensorboard=false", "train.resume=never",
            f"train.progress={str(progress).lower()}", "train.logging_steps=50", "train.save_total_limit=1",
            f"optim.lr={lr}", "optim.scheduler=constant", "optim.weight_decay=0.0",
        ])
        result = Trainer(cfg).train()
        train_s = time.perf_counter() - started - data_s
        tmp_out = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent if out.parent.exists() else None))
        shutil.copytree(result.final_model_dir, tmp_out, dirs_exist_ok=True)
        for stray in ("README.md",):  # the run's model card describes a scratch run; the report replaces it
            (tmp_out / stray).unlink(missing_ok=True)
        report: dict[str, Any] = {
            "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr, "num_images": num_images,
            "num_clips": num_clips, "init": os.path.relpath(init_dir, REPO_ROOT) if init is None else str(init_dir),
            "rows_checked_for_eval_prompts": rows_checked, "disjointness": disjoint,
            "data_s": round(data_s, 1), "train_s": round(train_s, 1),
            "final_train_loss": round(float(result.metrics.get("train/loss", float("nan"))), 4),
            "torch": torch.__version__,
        }
        report["wall_time_s"] = round(time.perf_counter() - started, 1)
        (tmp_out / "pretrain_report.json").write_text(json.dumps(report, indent=2) + "\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp_out, out)
        return measure_into_report(out, scratch / "heldout", seed) if measure else report
    finally:
        if work_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "assets" / "thinking_base"), help="model folder to write")
    parser.add_argument("--init", default=None, help="starting model (default: assets/shapes_base)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="SFT steps")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="samples per step")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help="constant learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and order")
    parser.add_argument("--num-images", type=int, default=DEFAULT_IMAGES, help="pretraining images")
    parser.add_argument("--num-clips", type=int, default=DEFAULT_CLIPS, help="pretraining clips")
    parser.add_argument("--work-dir", default=None, help="keep data and run directory here (default: temporary)")
    parser.add_argument("--no-measure", action="store_true", help="skip the held-out zero-shot measurement")
    parser.add_argument("--measure-only", action="store_true",
                        help="only measure the model already in --out and update its report")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.measure_only:
        import torch

        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory(prefix="thinking-base-measure-") as tmp:
            print(json.dumps(measure_into_report(args.out, args.work_dir or tmp, args.seed), indent=2))
        return 0
    report = pretrain_thinking_base(args.out, steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                                    lr=args.lr, num_images=args.num_images, num_clips=args.num_clips, init=args.init,
                                    work_dir=args.work_dir, progress=args.progress, measure=not args.no_measure)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
