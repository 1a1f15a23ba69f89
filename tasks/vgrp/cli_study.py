"""``mmsft study vgrp``: S-SFT vs R-SFT vs RL vs SFT->RL on small VGRP puzzles, trained vs untrained puzzles, text
vs image observations (VGRP-Bench, arXiv 2503.23064; tasks/vgrp/study.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tasks.puzzles.study_common import add_workers_argument, apply_workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/vgrp-study", help="work folder (data, runs, eval, transcripts, results)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller data, fewer steps and instances (about 6 min on 2 idle cores; docs/vgrp.md)")
    parser.add_argument("--trained", default="sudoku", help="the puzzle trained on")
    parser.add_argument("--untrained", default="", help="comma list of puzzles never trained on (default: the "
                        "preset's: futoshiki,binairo[,kakurasu])")
    parser.add_argument("--size", type=int, default=4, help="grid size of every puzzle")
    parser.add_argument("--no-image", action="store_true", help="skip the image-observation arm")
    parser.add_argument("--seed", type=int, default=0)
    add_workers_argument(parser, "training processes")


def run(args: argparse.Namespace) -> int:
    import torch

    from mmsft.config_base import ConfigError

    from envs.vgrp.registry import PUZZLE_NAMES
    from tasks.vgrp.study import VGRPSettings, run_study

    torch.set_num_threads(1)
    out = Path(args.out)
    settings = VGRPSettings.quick(out) if args.quick else VGRPSettings(out=out)
    untrained = tuple(p.strip() for p in args.untrained.split(",") if p.strip()) or settings.untrained
    bad = [p for p in (args.trained, *untrained) if p not in PUZZLE_NAMES]
    if bad:
        raise ConfigError(f"unknown puzzle(s) {bad}; expected some of {', '.join(PUZZLE_NAMES)}")
    if args.trained in untrained:
        raise ConfigError(f"--trained {args.trained!r} is also listed in --untrained")
    settings.trained, settings.untrained, settings.size = args.trained, untrained, args.size
    settings.image, settings.seed = not args.no_image, args.seed
    apply_workers(settings, args.workers)
    results = run_study(settings)
    print((out / "results.md").read_text())
    print(f"results: {out / 'results.json'}, curves: {out / 'curves.png'}, transcripts: {out / 'transcripts'}")
    return 0 if results["arms"] else 1
