"""The ``puzzle_success`` evaluator: generate on a dataset built by ``mmsft data build`` and score the answers with
the puzzle verifiers (Sokoban, General Points: :func:`tasks.puzzles.evaluate.evaluate_rows`; VGRP puzzles:
:func:`tasks.vgrp.api.evaluate_predictions`).

Importing this module registers the evaluator in :data:`mmsft.eval.evaluators.EVALUATORS` (the ``mmsft.plugins``
entry point of the puzzle tasks imports it; a pipeline can also list it under ``plugins:``). Pipeline entry::

    - {name: sokoban-ood, evaluator: puzzle_success, path: data/sok-10x10/test.jsonl, max_new_tokens: 32}

The main metric is ``success_rate`` (Sokoban / General Points: the verifier's success; VGRP: answer correct and,
for image items, perception correct — "Debunk the Myth of SFT Generalization", arXiv 2510.00237; VGRP-Bench,
arXiv 2503.23064). Predictions and the full report land in the evaluation folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsft.eval.evaluators import (EVALUATORS, EvalContext, EvaluatorError, arg_field, load_samples, parse_args,
                                   write_jsonl)

WORLDS = ("auto", "sokoban", "general-points", "vgrp")


@dataclass
class PuzzleArgs:
    path: str = arg_field("", "A JSONL written by `mmsft data build` (rows carry the verifier answer).")
    world: str = arg_field("auto", "auto: read from the rows' answers.", WORLDS)
    max_samples: int = arg_field(0, "Evaluate the first N rows (0: all).")
    batch_size: int = arg_field(16, "Prompts per generation batch.")
    max_new_tokens: int = arg_field(64, "Generation cap (plans and reasoning need more than single moves).")


def row_world(row: dict[str, Any], where: str) -> str:
    """``sokoban`` / ``general-points`` (answer carries ``world``) or ``vgrp`` (answer carries ``puzzle``)."""
    answer = row.get("answer")
    if isinstance(answer, dict):
        if answer.get("world") in ("sokoban", "general-points"):
            return str(answer["world"])
        if "puzzle" in answer:
            return "vgrp"
    raise EvaluatorError(f"{where}: row {row.get('id')!r} has no puzzle answer (expected an 'answer' mapping with "
                         "'world' sokoban/general-points, or a VGRP 'puzzle'); build the set with `mmsft data build`")


def detect_world(rows: list[dict[str, Any]], declared: str, where: str) -> str:
    worlds = {row_world(row, where) for row in rows}
    if len(worlds) != 1:
        raise EvaluatorError(f"{where}: rows mix worlds {sorted(worlds)}; use one evaluation set per world")
    world = worlds.pop()
    if declared != "auto" and declared != world:
        raise EvaluatorError(f"{where}: world={declared!r} but the rows are {world!r} puzzles")
    return world


@EVALUATORS.register("puzzle_success", metric="success_rate", args=PuzzleArgs)
def puzzle_success(model_dir: Path, spec: dict[str, Any], ctx: EvalContext) -> dict[str, float]:
    """Verifier success of greedy answers; also parse-ok rate, mean reward and per-group success."""
    from mmsft.eval.generation import generate
    from tasks.puzzles.rows import read_jsonl

    args = parse_args(PuzzleArgs, spec, ctx.where)
    samples = load_samples(args.path, args.max_samples, ctx)
    rows = read_jsonl(args.path)[: len(samples)]
    world = detect_world(rows, args.world, ctx.where)
    loaded, adapter = ctx.model(model_dir)
    texts = generate(loaded.model, adapter, samples, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    predictions = [{"id": row.get("id", sample.id), "response": text} for row, sample, text in zip(rows, samples, texts)]
    predictions_path = ctx.out_dir / "predictions.jsonl"
    write_jsonl(predictions_path, predictions)
    if world == "vgrp":
        from tasks.vgrp.api import evaluate_predictions

        report = evaluate_predictions(predictions_path, args.path)
        metrics = _vgrp_metrics(report)
    else:
        from tasks.puzzles.evaluate import evaluate_rows

        report = evaluate_rows(world, predictions, rows)
        overall = report["overall"]
        metrics = {"success_rate": overall["success_rate"], "parse_ok_rate": overall["parse_ok_rate"],
                   "mean_reward": overall["mean_reward"], "n": float(overall["n"]), "missing": float(report["missing"])}
        for group, values in report["groups"].items():
            for value, tally in values.items():
                metrics[f"success_rate/{group}={value}"] = tally["success_rate"]
    (ctx.out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    return metrics


def _vgrp_metrics(report: dict[str, Any]) -> dict[str, float]:
    overall = report["overall"]
    metrics: dict[str, float] = {"n": float(report["n_scored"]), "unmatched": float(report["unmatched"])}
    if overall["n"]:
        metrics["success_rate"] = overall["success"]
        for key in ("perception_acc", "answer_acc"):
            metrics[key] = overall[key]
        metrics.update({f"success_rate/{p}": b["success"] for p, b in report["by_puzzle"].items()})
    probes = report.get("probes", {})
    if probes:
        total = sum(p["n"] for p in probes.values())
        probe_acc = sum(p["n"] * p["accuracy"] for p in probes.values()) / total
        metrics["probe_accuracy"] = probe_acc
        metrics.setdefault("success_rate", probe_acc)
    if "success_rate" not in metrics:
        raise EvaluatorError(f"VGRP report scored no rows ({report['unmatched']} unmatched predictions)")
    return metrics
