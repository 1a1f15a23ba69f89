"""Evaluation with VideoRFT's protocol (arXiv 2505.12434, ``src/eval_bench.py``): sampling at temperature 0.1 and
top-p 0.001 (effectively greedy), a frame budget of its own (32 frames at 256·28² pixels, separate from the 16
training frames), each row scored by its problem type — multiple choice: correct iff the accuracy reward is 1;
numerical, OCR, free-form: the accuracy reward; regression: mean relative accuracy (MRA over θ ∈ {0.50, …, 0.95}).
Results overall, by problem type and by data source, plus the think/answer format rate.

Registered as the evaluator ``videorft_eval`` (main metric ``accuracy``); :func:`evaluate_model` is the same for
scripts.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mmsft.data.media import MediaBudget
from mmsft.eval.evaluators import EVALUATORS, EvalContext, arg_field, load_samples, parse_args, write_jsonl
from tasks.video.answers import extract_answer, is_think_answer_format, parse_number
from tasks.video.rewards import ground_truth, mean_relative_accuracy, score_answer


def score_row(sample: Any, prediction: str) -> float:
    """The protocol's score of one prediction (see the module docstring)."""
    problem_type, truth = ground_truth(sample, 0, {})
    answer = extract_answer(prediction)
    if problem_type == "regression":
        gt = parse_number(truth)
        return mean_relative_accuracy(parse_number(answer), gt) if gt is not None else 0.0
    value = score_answer(problem_type, answer, truth)
    return float(value == 1.0) if problem_type == "multiple choice" else value


def summarize(samples: Sequence[Any], predictions: Sequence[str]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics, per-row records): ``accuracy``, ``format``, ``n``, ``accuracy/type/<t>``, ``accuracy/source/<s>``."""
    rows, by_type, by_source = [], defaultdict(list), defaultdict(list)
    for sample, prediction in zip(samples, predictions):
        meta = getattr(sample, "meta", {}) or {}
        score = score_row(sample, prediction)
        problem_type = str(meta.get("problem_type", "free-form"))
        source = str(meta.get("data_source", "unknown"))
        by_type[problem_type].append(score)
        by_source[source].append(score)
        rows.append({"id": sample.id, "problem_type": problem_type, "data_source": source, "prediction": prediction,
                     "answer": sample.answer, "score": score, "format": is_think_answer_format(prediction)})
    n = len(rows)
    metrics = {"accuracy": sum(r["score"] for r in rows) / max(n, 1),
               "format": sum(r["format"] for r in rows) / max(n, 1), "n": float(n)}
    metrics.update({f"accuracy/type/{k}": sum(v) / len(v) for k, v in sorted(by_type.items())})
    metrics.update({f"accuracy/source/{k}": sum(v) / len(v) for k, v in sorted(by_source.items())})
    return metrics, rows


@dataclass
class VideoEvalArgs:
    path: str = arg_field("", "Released JSON/JSONL file (format video-r1 / videorft-rl ...) or an mmsft JSONL.")
    format: str = arg_field("video-r1", "Released format of 'path', or mmsft for an mmsft-schema JSONL.",
                            ("video-r1", "video-r1-cot", "videorft-rl", "videorft-cot", "mmsft"))
    media_root: str = arg_field("", "Folder the rows' media paths are relative to (default: the file's folder).")
    max_samples: int = arg_field(0, "Evaluate the first N rows (0: all).")
    batch_size: int = arg_field(8, "Prompts per generation batch.")
    max_new_tokens: int = arg_field(1024, "Generation cap (VideoRFT: 1024).")
    temperature: float = arg_field(0.1, "Sampling temperature (VideoRFT: 0.1; 0 = greedy).")
    top_p: float = arg_field(0.001, "Nucleus threshold (VideoRFT: 0.001).")
    frames: int = arg_field(32, "Frames per video at evaluation (VideoRFT: 32; training uses 16).")
    video_max_pixels: int = arg_field(256 * 28 * 28, "Pixels per evaluation frame (VideoRFT: 256·28²).")
    seed: int = arg_field(0, "torch seed for sampling.")


def load_eval_samples(args: VideoEvalArgs, ctx: EvalContext | None = None) -> list[Any]:
    if args.format == "mmsft":
        if ctx is None:
            from mmsft.data.loaders import load_dataset

            samples = load_dataset(args.path)
            return samples[: args.max_samples] if args.max_samples > 0 else samples
        return load_samples(args.path, args.max_samples, ctx)
    from tasks.video.loaders import load_released

    prompt_format = {"video-r1-cot": "video-r1", "videorft-cot": "videorft-rl"}.get(args.format, args.format)
    loaded = load_released(args.path, args.media_root or None, prompt_format, max_rows=args.max_samples)
    return loaded.samples


def evaluate_model(model: Any, adapter: Any, samples: Sequence[Any], args: VideoEvalArgs,
                   out_dir: str | Path | None = None) -> dict[str, float]:
    """Generate with the protocol's settings, score and summarise; writes ``predictions.jsonl`` to ``out_dir``."""
    import torch

    from mmsft.eval.generation import generate
    eval_adapter = copy.copy(adapter)  # the same processor with the evaluation frame budget
    eval_adapter.budget = _budget(adapter, args)
    sampling: dict[str, Any] = {}
    if args.temperature > 0:
        torch.manual_seed(args.seed)
        sampling = {"temperature": args.temperature, "top_p": args.top_p}
    predictions = generate(model, eval_adapter, list(samples), batch_size=args.batch_size,
                           max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0, **sampling)
    metrics, rows = summarize(samples, predictions)
    if out_dir is not None:
        write_jsonl(Path(out_dir) / "predictions.jsonl", rows)
    return metrics


def _budget(adapter: Any, args: VideoEvalArgs) -> MediaBudget:
    base = adapter.budget
    return MediaBudget(image_min_pixels=base.image_min_pixels, image_max_pixels=base.image_max_pixels,
                       video_min_pixels=min(base.video_min_pixels, args.video_max_pixels),
                       video_max_pixels=args.video_max_pixels, video_fps=base.video_fps,
                       video_min_frames=min(base.video_min_frames, args.frames), video_max_frames=args.frames,
                       factor=base.factor)


@EVALUATORS.register("videorft_eval", metric="accuracy", args=VideoEvalArgs)
def videorft_eval(model_dir: Path, spec: dict[str, Any], ctx: EvalContext) -> dict[str, float]:
    """VideoRFT's evaluation protocol on a released-format (or mmsft) file; see the module docstring."""
    args = parse_args(VideoEvalArgs, spec, ctx.where)
    samples = load_eval_samples(args, ctx)
    loaded, adapter = ctx.model(model_dir)
    return evaluate_model(loaded.model, adapter, samples, args, ctx.out_dir)


__all__ = ["VideoEvalArgs", "evaluate_model", "load_eval_samples", "score_row", "summarize", "videorft_eval"]
