"""``mmsft eval-puzzles --world W --predictions FILE.jsonl``: score a policy's outputs on a puzzle world.

Uses the tolerant parser and the strict verifier of each world; ``--data`` joins the dataset built by
``mmsft data build`` by id (dataset rows without a prediction count as missing failures). VGRP worlds
(``vgrp-<name>``) go to ``tasks.vgrp.api.evaluate_predictions``. Only the standard library at module level.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", required=True, help="sokoban, general-points, or vgrp-<puzzle>")
    parser.add_argument("--predictions", required=True,
                        help="JSONL with 'id' and the model text under response/prediction/output/completion/text")
    parser.add_argument("--data", default=None, help="the built dataset JSONL (answers and meta joined by id)")
    parser.add_argument("--out", default=None, help="write the full JSON report (with per-example verdicts) here")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tasks.puzzles.dispatch import call_with_accepted, is_vgrp, vgrp_function, vgrp_puzzle

    try:
        if not Path(args.predictions).is_file():
            raise ValueError(f"--predictions {args.predictions!r} is not a file")
        if args.data is not None and not Path(args.data).is_file():
            raise ValueError(f"--data {args.data!r} is not a file")
        if is_vgrp(args.world):
            fn = vgrp_function("evaluate_predictions")
            report = call_with_accepted(fn, {
                "puzzle": vgrp_puzzle(args.world), "world": args.world, "predictions": args.predictions,
                "predictions_path": args.predictions, "data": args.data, "dataset_path": args.data})
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
            print(json.dumps(report, indent=2, default=str))
            return 0
        from tasks.puzzles.evaluate import evaluate_files, format_report

        report = evaluate_files(args.world, args.predictions, args.data)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        print(f"mmsft eval-puzzles: error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        # model text echoed in verdict details may hold lone surrogates: write them as \udXXX escapes, not a crash
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8",
                                  errors="backslashreplace")
    if args.json:
        summary = {k: v for k, v in report.items() if k != "examples"}
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0
