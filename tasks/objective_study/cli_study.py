"""``mmsft study sft-objectives [--quick]``: train SFT, DFT, ASFT, OTR, CurioSFT, IFT, masked FT, CHORD, Prefix-RFT,
LfU and GRPO on one toy task from the same base for the same step budget and compare ID / OOD accuracy, forgetting, calibration,
diversity and cost (:mod:`tasks.objective_study.study`). Default (5 seeds × 300 steps) ≈ 10–20 min on 2 CPU cores,
``--quick`` (1 seed × 100 steps) ≈ 2–4 min."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/objective-study", help="work folder (data, models, runs, results)")
    parser.add_argument("--quick", action="store_true", help="a short budget (1 seed, 100 steps per method)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per method (default 300; quick 100)")
    parser.add_argument("--base-steps", type=int, default=800, help="steps of the base model's training")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of every method")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2,3,4; quick 0)")
    parser.add_argument("--methods", default="", help="comma-separated subset (default: all)")


def run(args: argparse.Namespace) -> int:
    import sys

    from tasks.objective_study.study import METHODS, StudyConfig, run_study

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"mmsft study sft-objectives: unknown methods {unknown}; choose from {list(METHODS)}", file=sys.stderr)
        return 2
    steps = args.steps if args.steps is not None else (100 if args.quick else 300)
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else ([0] if args.quick else [0, 1, 2, 3, 4])
    cfg = StudyConfig(out=args.out, steps=steps, base_steps=args.base_steps, lr=args.lr, seeds=seeds, methods=methods,
                      diversity_prompts=16 if args.quick else 32)
    results = run_study(cfg)
    from tasks.objective_study.study import markdown

    print(markdown(results))
    return 0
