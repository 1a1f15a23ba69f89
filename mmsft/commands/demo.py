"""``mmsft demo``: the embedded default job, fully offline.

Builds the tiny Qwen2.5-VL from its real config classes, generates the shapes-world image + video QA set locally,
measures held-out accuracy, fine-tunes with SFT through the regular trainer (the same code path as
``mmsft train``), measures again, and prints both by question kind. Nothing is downloaded; figures are computed.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="work folder (model, data, run directory, results)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the model, the data and training")
    parser.add_argument("--family", default="qwen2.5-vl", choices=("qwen2-vl", "qwen2.5-vl"), help="tiny VLM family")
    parser.add_argument("--num-train", type=int, default=3000, help="training questions")
    parser.add_argument("--num-eval", type=int, default=300, help="held-out questions")
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=16, help="samples per step")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--objective", default="sft", help="registered loss (sft, dft, ...)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for tiny models on CPU)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="extra trainer config overrides")


def run(args: argparse.Namespace) -> int:
    import json
    import shutil
    import time
    from pathlib import Path

    import torch
    from rich.console import Console
    from rich.table import Table

    from mmsft.config import load_config
    from mmsft.data.loaders import load_jsonl
    from mmsft.data.shapes import generate_shapes_qa
    from mmsft.eval.generation import accuracy_by, evaluate_accuracy
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.models.tiny import build_tiny
    from mmsft.train.trainer import Trainer

    console = Console()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    base = out / "base-model"
    console.print(f"[bold]1/5[/] building tiny {args.family} in {base}")
    build_tiny(args.family, base, seed=args.seed)
    console.print(f"[bold]2/5[/] generating shapes-world QA ({args.num_train} train / {args.num_eval} held out)")
    data = generate_shapes_qa(out / "data", args.num_train, args.num_eval, seed=args.seed)
    eval_samples = load_jsonl(data["eval"])

    def evaluate(model_dir: Path):
        loaded = load_model(str(model_dir))
        result = evaluate_accuracy(loaded.model, build_adapter(loaded), eval_samples, batch_size=32, max_new_tokens=4)
        return result.accuracy, accuracy_by(result.predictions)

    console.print("[bold]3/5[/] held-out accuracy of the untrained model")
    before, before_by = evaluate(base)
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    overrides = [f"model.name_or_path={base}", f"data.train_path={data['train']}", f"data.eval_path={data['eval']}",
                 f"train.output_dir={run_dir}", f"train.max_steps={args.steps}",
                 f"train.micro_batch_size={args.batch_size}", f"optim.lr={args.lr}", "optim.warmup_ratio=0.03",
                 # constant LR: a tiny VLM trained from scratch needs several hundred steps at full LR before it
                 # starts reading image tokens; a cosine decay spends them too early.
                 "optim.scheduler=constant",
                 f"train.seed={args.seed}", f"train.torch_threads={args.threads}", f"objective.name={args.objective}",
                 "eval.max_new_tokens=4", "eval.max_samples=100", f"train.eval_steps={max(args.steps // 5, 1)}",
                 "train.resume=never", *args.overrides]
    console.print(f"[bold]4/5[/] fine-tuning ({args.objective}, {args.steps} steps) → {run_dir}")
    result = Trainer(load_config(None, overrides)).train()
    console.print("[bold]5/5[/] held-out accuracy of the fine-tuned model")
    after, after_by = evaluate(result.final_model_dir)

    table = Table(title=f"shapes-world held-out accuracy (seed {args.seed}, {len(eval_samples)} questions)")
    for column in ("question kind", "before", "after"):
        table.add_column(column, justify="left" if column == "question kind" else "right")
    for kind in sorted(set(before_by) | set(after_by)):
        table.add_row(kind, f"{before_by.get(kind, 0.0):.3f}", f"{after_by.get(kind, 0.0):.3f}")
    table.add_row("[bold]all", f"[bold]{before:.3f}", f"[bold]{after:.3f}")
    console.print(table)
    wall = time.perf_counter() - started
    summary = {"seed": args.seed, "family": args.family, "objective": args.objective, "steps": args.steps,
               "num_train": args.num_train, "num_eval": len(eval_samples), "accuracy_before": before,
               "accuracy_after": after, "before_by_kind": before_by, "after_by_kind": after_by, "wall_time_s": wall}
    (out / "demo_results.json").write_text(json.dumps(summary, indent=2))
    console.print(f"accuracy {before:.3f} → {after:.3f}; wall time {wall:.0f} s; results in {out / 'demo_results.json'}")
    return 0
