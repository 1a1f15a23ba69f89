"""``mmsft study data-selection [--quick]``: random vs S3FT / GRAPE / UDS / Q-Tuning / STAT at the same SFT budget
(:mod:`tasks.data_selection.study`). Default (3 seeds × 150 steps) ≈ 15 min on 2 shared CPU cores (measured
13.5 min); ``--quick`` (1 seed × 60 steps) ≈ 2–4 min."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/data-selection-study", help="work folder (data, models, runs, results)")
    parser.add_argument("--quick", action="store_true", help="a short budget (1 seed, 60 steps per method)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per method (default 150; quick 60)")
    parser.add_argument("--base-steps", type=int, default=800, help="steps of the base model's training")
    parser.add_argument("--noise", type=float, default=0.3, help="probability that an annotation is wrong")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2; quick 0)")
    parser.add_argument("--methods", default="", help="comma-separated subset (default: all)")


def run(args: argparse.Namespace) -> int:
    import sys

    from tasks.data_selection.study import METHODS, StudyConfig, markdown, run_study

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"mmsft study data-selection: unknown methods {unknown}; choose from {list(METHODS)}", file=sys.stderr)
        return 2
    if not 0 <= args.noise < 1:
        print(f"mmsft study data-selection: --noise must be in [0, 1), got {args.noise}", file=sys.stderr)
        return 2
    steps = args.steps if args.steps is not None else (60 if args.quick else 150)
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else ([0] if args.quick else [0, 1, 2])
    results = run_study(StudyConfig(out=args.out, steps=steps, base_steps=args.base_steps, noise=args.noise,
                                    seeds=seeds, methods=methods))
    print(markdown(results))
    return 0
