"""``mmsft study cls-rl``: the embedded few-shot image-classification study (CLS-RL, arXiv 2503.16188).

Starting from the thinking-capable tiny base VLM (``assets/thinking_base``: pretrained on shapes-world images and
video-world clips in answer-only and think-then-answer formats, never on the classification prompt or the study's
images), on a 4-shot base-to-new split it compares zero-shot (with the direct-answer and with the thinking prompt),
SFT (on the labels), CLS-RL (GRPO with thinking prompts, accuracy + format rewards) and No-Thinking-CLS-RL (GRPO with
direct-answer prompts and the raw-equality reward), and reports accuracy on base classes, on new classes and their
harmonic mean, each method's change of HM over the zero-shot row of its prompt mode, plus a PNG of reward and
accuracy curves. Every number is computed; nothing is tuned to a conclusion.
"""

from __future__ import annotations

import argparse

START: dict[str, str] = {"SFT": "zero-shot", "CLS-RL": "zero-shot (thinking)", "No-Thinking-CLS-RL": "zero-shot"}
"""Each trained method's zero-shot row: the same base model with the prompt mode the method is evaluated in."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/cls-study", help="work folder (data, runs, results, plot)")
    parser.add_argument("--seed", type=int, default=0, help="seed for splits, option lists, sampling and training")
    parser.add_argument("--k-shot", type=int, default=4, help="training images per base class")
    parser.add_argument("--base-model", default="", help="base VLM folder (default: the shipped thinking-capable base, assets/thinking_base)")
    parser.add_argument("--sft-steps", type=int, default=150, help="SFT optimizer steps")
    parser.add_argument("--rl-steps", type=int, default=150, help="GRPO steps for each RL method")
    parser.add_argument("--group-size", type=int, default=4, help="completions per prompt (CLS-RL: 4)")
    parser.add_argument("--prompts-per-step", type=int, default=8, help="prompts per GRPO step")
    parser.add_argument("--think-tokens", type=int, default=48, help="generation cap with thinking prompts")
    parser.add_argument("--nothink-tokens", type=int, default=12, help="generation cap with direct-answer prompts")
    parser.add_argument("--sft-lr", type=float, default=2e-4, help="SFT learning rate")
    parser.add_argument("--rl-lr", type=float, default=2e-4, help="GRPO learning rate")
    parser.add_argument("--test-per-class", type=int, default=8, help="test images per class")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")


def run(args: argparse.Namespace) -> int:
    import json
    import shutil
    import time
    from pathlib import Path

    import torch
    from rich.console import Console
    from rich.table import Table

    import tasks.image_classification  # noqa: F401  (registers the CLS-RL rewards)
    from mmsft.config import load_config
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.report import write_report_safely
    from mmsft.train.trainer import Trainer
    from tasks.image_classification.base_model import ensure_thinking_base
    from tasks.image_classification.builder import ShapesWorldSource, build_fewshot_splits
    from tasks.image_classification.evaluation import evaluate_base_new
    from tasks.image_classification.prompts import question_prefix
    from tasks.image_classification.study_plot import plot_curves

    console = Console()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = Path(args.base_model) if args.base_model else ensure_thinking_base()
    splits = build_fewshot_splits(ShapesWorldSource(seed=args.seed), out / "data", k_shot=args.k_shot, seed=args.seed,
                                  test_per_class=args.test_per_class, prefix=question_prefix("shapes"))
    console.print(f"base model {base}; {len(splits.base_classes)} base / {len(splits.new_classes)} new classes; "
                  f"{splits.info['counts']}")

    def evaluate(model_dir: Path, mode: str, max_new_tokens: int) -> dict:
        loaded = load_model(str(model_dir))
        result = evaluate_base_new(loaded.model, build_adapter(loaded), splits.test_base[mode], splits.test_new[mode],
                                   batch_size=32, max_new_tokens=max_new_tokens)
        (out / f"predictions-{model_dir.parent.name}-{mode}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in result.pop("predictions")))
        return result

    def train(name: str, overrides: list[str]) -> Path:
        run_dir = out / "runs" / name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        common = [f"model.name_or_path={base}", f"train.output_dir={run_dir}", f"train.seed={args.seed}",
                  f"train.torch_threads={args.threads}", "train.resume=never", "train.save_total_limit=1",
                  "optim.scheduler=constant"]
        console.print(f"[bold]training {name}[/] → {run_dir}")
        return Trainer(load_config(None, common + overrides)).train().final_model_dir

    rl_common = [f"train.max_steps={args.rl_steps}", f"rl.prompts_per_step={args.prompts_per_step}",
                 f"rl.group_size={args.group_size}", f"optim.lr={args.rl_lr}", "rl.temperature=1.0",
                 f"train.micro_batch_size={args.prompts_per_step * args.group_size}"]
    results: dict[str, dict] = {}
    timings: dict[str, float] = {}

    base_dir = base / "model" if (base / "model").is_dir() else base
    t0 = time.perf_counter()
    results["zero-shot"] = evaluate(base_dir, "nothink", args.nothink_tokens)
    timings["zero-shot"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results["zero-shot (thinking)"] = evaluate(base_dir, "think", args.think_tokens)
    timings["zero-shot (thinking)"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sft_dir = train("sft", [f"data.train_path={splits.train_base['sft']}", f"train.max_steps={args.sft_steps}",
                            "train.micro_batch_size=8", f"optim.lr={args.sft_lr}"])
    results["SFT"] = evaluate(sft_dir, "nothink", args.nothink_tokens)
    timings["SFT"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cls_dir = train("cls-rl", ["algorithm=grpo", f"data.train_path={splits.train_base['think']}",
                               "rl.rewards=cls_accuracy,cls_format", f"rl.max_new_tokens={args.think_tokens}",
                               *rl_common])
    results["CLS-RL"] = evaluate(cls_dir, "think", args.think_tokens)
    timings["CLS-RL"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    nothink_dir = train("nothink-cls-rl", ["algorithm=grpo", f"data.train_path={splits.train_base['nothink']}",
                                           "rl.rewards=cls_nothink_equality", f"rl.max_new_tokens={args.nothink_tokens}",
                                           *rl_common])
    results["No-Thinking-CLS-RL"] = evaluate(nothink_dir, "nothink", args.nothink_tokens)
    timings["No-Thinking-CLS-RL"] = time.perf_counter() - t0

    plot_path = plot_curves({"CLS-RL": (out / "runs" / "cls-rl" / "metrics.jsonl", "reward/cls_accuracy"),
                             "No-Thinking-CLS-RL": (out / "runs" / "nothink-cls-rl" / "metrics.jsonl",
                                                    "reward/cls_nothink_equality")},
                            out / "curves.png")
    wall = time.perf_counter() - started
    table = Table(title=f"shapes world, {args.k_shot}-shot base-to-new (seed {args.seed}, wall time {wall:.0f} s)")
    for column in ("method", "base", "new", "HM", "HM vs zero-shot", "time (s)"):
        table.add_column(column, justify="left" if column == "method" else "right")
    lines = ["| method | base | new | HM | HM vs zero-shot | time (s) |", "| --- | --- | --- | --- | --- | --- |"]
    for method, r in results.items():
        start = results.get(START.get(method, ""))
        delta = f"{r['hm'] - start['hm']:+.3f}" if start is not None else ""
        r["hm_vs_zero_shot"] = None if start is None else r["hm"] - start["hm"]
        table.add_row(method, f"{r['base']:.3f}", f"{r['new']:.3f}", f"{r['hm']:.3f}", delta, f"{timings[method]:.0f}")
        lines.append(f"| {method} | {r['base']:.3f} | {r['new']:.3f} | {r['hm']:.3f} | {delta} | "
                     f"{timings[method]:.0f} |")
    console.print(table)
    summary = {"seed": args.seed, "k_shot": args.k_shot, "base_model": str(base), "results": results,
               "timings_s": timings, "wall_time_s": wall, "plot": str(plot_path), "args": vars(args)}
    summary["args"] = {k: v for k, v in summary["args"].items() if not callable(v)}
    (out / "study_results.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "study_results.md").write_text("\n".join(lines) + "\n")
    console.print(f"curves: {plot_path}; results: {out / 'study_results.json'}")
    write_report_safely(out)  # report.html over the four methods; prints its path last
    return 0
