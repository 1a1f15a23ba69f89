"""``mmsft eval CONFIG.yaml key=value ...``: generation accuracy of ``model.name_or_path`` on ``data.eval_path``."""

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

    from mmsft.data.loaders import load_dataset
    from mmsft.data.schema import MediaPolicy
    from mmsft.eval.generation import accuracy_by, evaluate_accuracy
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.train.trainer import media_budget

    cfg = resolve_config(args)
    if not cfg.model.name_or_path or not cfg.data.eval_path:
        raise SystemExit("mmsft eval needs model.name_or_path and data.eval_path")
    if cfg.train.torch_threads > 0:
        torch.set_num_threads(cfg.train.torch_threads)
    loaded = load_model(cfg.model.name_or_path, family=cfg.model.family, dtype=cfg.model.dtype)
    adapter = build_adapter(loaded, media_budget(cfg), max_length=None)
    samples = load_dataset(cfg.data.eval_path, media=MediaPolicy.from_config(cfg.data.media_roots,
                                                                          cfg.data.allow_any_media_path))
    if cfg.eval.max_samples:
        samples = samples[: cfg.eval.max_samples]
    result = evaluate_accuracy(loaded.model, adapter, samples, cfg.eval.batch_size, cfg.eval.max_new_tokens, cfg.eval.match)
    out_dir = Path(cfg.train.output_dir) / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "predictions.jsonl", "w") as handle:
        for row in result.predictions:
            handle.write(json.dumps(row) + "\n")
    by_kind = accuracy_by(result.predictions)
    (out_dir / "eval.json").write_text(json.dumps({"accuracy": result.accuracy, "correct": result.correct,
                                                    "total": result.total, "by_kind": by_kind}, indent=2))
    table = Table(title=f"accuracy of {cfg.model.name_or_path} on {cfg.data.eval_path}")
    table.add_column("subset")
    table.add_column("accuracy", justify="right")
    for kind, acc in by_kind.items():
        table.add_row(kind, f"{acc:.3f}")
    table.add_row("[bold]all", f"[bold]{result.accuracy:.3f} ({result.correct}/{result.total})")
    Console().print(table)
    return 0
