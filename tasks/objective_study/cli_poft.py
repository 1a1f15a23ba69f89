"""``mmsft data poft-scores IN.jsonl OUT.jsonl --models A,B,C``: PoFT's offline reference score r̄ (the mean over
aligned models of the target's length-normalised log-likelihood) into ``meta.ref_score``
(:mod:`mmsft.data.transforms_poft`)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="JSONL dataset (mmsft schema)")
    parser.add_argument("output", help="JSONL to write (rows with meta.ref_score)")
    parser.add_argument("--models", required=True, help="comma-separated aligned model folders (paper: 3)")
    parser.add_argument("--batch-size", type=int, default=8)


def run(args: argparse.Namespace) -> int:
    from mmsft.data.transforms_poft import add_reference_scores

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    count = add_reference_scores(args.input, args.output, models, args.batch_size)
    print(f"wrote {count} rows with meta.ref_score ({len(models)} models) to {args.output}", file=sys.stderr)
    return 0
