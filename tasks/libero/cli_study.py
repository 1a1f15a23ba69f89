"""``mmsft study vla-opd``: GRPO vs on-policy distillation vs DAgger-style SFT for a tiny VLA on libero_spatial
(:mod:`tasks.libero.study`). Only the standard library is imported at module level.

Examples::

    mmsft study vla-opd --quick --out runs/study_quick      # pipeline check, 10-12 minutes on 2 idle cores
    mmsft study vla-opd --out runs/study_vla_opd            # default size, about an hour on 2 idle cores
    mmsft study vla-opd --out runs/study_vla_opd --stop-after sft   # demonstrations + SFT only; rerun to go on
    # one process per method from the same SFT model (copy demos/, sft/, eval/sft/ and study_key.json into each
    # folder: reused), then one table:
    mmsft study vla-opd --out runs/s_grpo --methods grpo & mmsft study vla-opd --out runs/s_opd --methods opd
    mmsft study vla-opd --merge runs/s_grpo,runs/s_opd --out runs/study_vla_opd

Rerunning in the same ``--out`` resumes: the demonstrations, a finished SFT model and evaluations of the same
episodes are reused.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/study_vla_opd"), help="work folder (results there)")
    parser.add_argument("--quick", action="store_true", help="smallest sizes: a check of the whole pipeline")
    parser.add_argument("--tasks", default="", help="libero_spatial task ids 'A,B': SFT on both, post-training on "
                                                    "B, forgetting measured on A (default 0,1)")
    parser.add_argument("--methods", default="", help="comma list from grpo,opd,dagger (default: all)")
    parser.add_argument("--sft-steps", type=int, default=0, help="SFT optimizer steps (0: the size's default)")
    parser.add_argument("--rollout-batches", type=int, default=0, help="post-training rollout batches per method")
    parser.add_argument("--eval-trials", type=int, default=0, help="episodes per evaluation set")
    parser.add_argument("--group-size", type=int, default=0, help="episodes per rollout batch (GRPO group size; "
                                                                   "also the number of rollout workers)")
    parser.add_argument("--curve-points", type=int, default=0, help="checkpoints evaluated per method (the last "
                                                                     "one also on held-out states and forgetting)")
    parser.add_argument("--workers", type=int, default=2, help="simulator worker processes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model, data order and sampling")
    parser.add_argument("--stop-after", choices=("sft",), default=None,
                        help="end after training the SFT model (rerun in the same --out to go on)")
    parser.add_argument("--merge", default="", help="comma list of study folders (e.g. one per method, same SFT "
                                                    "model): write one table/curves/GIF set into --out and stop")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tasks.libero.study import METHODS, StudyConfig, run_study

    console = Console(stderr=True)
    if args.merge:
        from tasks.libero.study import merge_results

        try:
            merge_results([Path(f) for f in args.merge.split(",") if f.strip()], args.out)
        except (FileNotFoundError, ValueError) as exc:
            console.print(f"[red]study vla-opd: {exc}[/red]")
            return 2
        print((args.out / "results.md").read_text())
        return 0
    overrides: dict = {"out": args.out, "workers": args.workers, "seed": args.seed}
    if args.tasks:
        try:
            overrides["tasks"] = tuple(int(t) for t in args.tasks.split(","))
        except ValueError:
            console.print(f"[red]study vla-opd: --tasks {args.tasks!r}: expected ids like '0,1'[/red]")
            return 2
    if args.methods:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            console.print(f"[red]study vla-opd: --methods {args.methods!r}: expected a list from "
                          f"{sorted(METHODS)}[/red]")
            return 2
        overrides["methods"] = methods
    for flag, key in (("sft_steps", "sft_steps"), ("rollout_batches", "rollout_batches"),
                      ("eval_trials", "eval_trials"), ("curve_points", "curve_points"),
                      ("group_size", "group_size")):
        if getattr(args, flag) > 0:
            overrides[key] = getattr(args, flag)
    cfg = StudyConfig.quick(**overrides) if args.quick else StudyConfig(**overrides)
    results = run_study(cfg, stop_after=args.stop_after or "")
    print((cfg.out / "results.md").read_text())
    console.print(f"results: {cfg.out / 'results.json'}  {cfg.out / 'results.md'}  {cfg.out / 'curves.png'}  "
                  f"total {results['total']['wall_s']} s wall, {results['total']['cpu_s']} s CPU")
    return 0
