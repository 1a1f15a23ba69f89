"""``mmsft eval CONFIG.yaml key=value ...``: generation accuracy of ``model.name_or_path`` on ``data.eval_path``.

Runs the ``generation_accuracy`` evaluator (:mod:`mmsft.eval.evaluators`, the same code a pipeline runs after each
stage) with ``eval.*`` as its arguments; ``eval.evaluator=NAME`` runs another registered evaluator (calibration,
diversity, ...) with ``eval.evaluator_args``.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mmsft.commands._common import add_config_arguments

    add_config_arguments(parser)
    parser.epilog = ("Writes <train.output_dir>/eval/predictions.jsonl and eval.json, and prints accuracy overall and "
                     "per meta.kind.")


def run(args: argparse.Namespace) -> int:
    from mmsft.commands._common import handle_config_flags, resolve_config

    if handle_config_flags(args):
        return 0
    import json
    from pathlib import Path

    import torch
    from rich.console import Console
    from rich.table import Table

    from mmsft.data.schema import MediaPolicy
    from mmsft.eval.evaluators import EvalContext, ModelSettings, run_evaluator
    from mmsft.train.trainer import media_budget

    cfg = resolve_config(args)
    if not cfg.model.name_or_path or not cfg.data.eval_path:
        raise SystemExit("mmsft eval needs model.name_or_path and data.eval_path")
    if cfg.train.torch_threads > 0:
        torch.set_num_threads(cfg.train.torch_threads)
    out_dir = Path(cfg.train.output_dir) / "eval"
    ctx = EvalContext(out_dir, ModelSettings.from_config(cfg, media_budget(cfg)),
                      media=MediaPolicy.from_config(cfg.data.media_roots, cfg.data.allow_any_media_path))
    spec = {"path": cfg.data.eval_path, "max_samples": cfg.eval.max_samples, "batch_size": cfg.eval.batch_size,
            "max_new_tokens": cfg.eval.max_new_tokens, "match": cfg.eval.match}
    if cfg.eval.evaluator != "generation_accuracy":  # e.g. calibration, diversity: their own arguments
        return _run_other(cfg, ctx, out_dir)
    metrics, _ = run_evaluator("generation_accuracy", cfg.model.name_or_path, spec, ctx)
    by_kind = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("accuracy/")}
    correct, total = int(metrics["correct"]), int(metrics["total"])
    (out_dir / "eval.json").write_text(json.dumps({"accuracy": metrics["accuracy"], "correct": correct,
                                                    "total": total, "by_kind": by_kind}, indent=2))
    table = Table(title=f"accuracy of {cfg.model.name_or_path} on {cfg.data.eval_path}")
    table.add_column("subset")
    table.add_column("accuracy", justify="right")
    for kind, acc in by_kind.items():
        table.add_row(kind, f"{acc:.3f}")
    table.add_row("[bold]all", f"[bold]{metrics['accuracy']:.3f} ({correct}/{total})")
    Console().print(table)
    return 0



def _run_other(cfg, ctx, out_dir) -> int:
    """Run ``eval.evaluator`` with ``eval.evaluator_args`` (``path`` = data.eval_path); write and print its metrics."""
    import json

    from rich.console import Console
    from rich.table import Table

    from mmsft.eval.evaluators import run_evaluator

    spec = {"path": cfg.data.eval_path, **cfg.eval.evaluator_args}
    metrics, main = run_evaluator(cfg.eval.evaluator, cfg.model.name_or_path, spec, ctx)
    (out_dir / "eval.json").write_text(json.dumps({"evaluator": cfg.eval.evaluator, "main": main, **metrics}, indent=2))
    table = Table(title=f"{cfg.eval.evaluator} of {cfg.model.name_or_path} on {cfg.data.eval_path}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(f"[bold]{key}" if key == main else key, f"{value:.4f}")
    Console().print(table)
    return 0
