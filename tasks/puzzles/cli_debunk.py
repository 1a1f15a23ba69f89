"""``mmsft study debunk``: SFT answer-only vs CoT, with and without prompt diversity, vs RL on Sokoban and General
Points ("Debunk the Myth of SFT Generalization", arXiv 2510.00237; tasks/puzzles/study_debunk.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tasks.puzzles.study_common import add_workers_argument, apply_workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/debunk-study", help="work folder (data, runs, transcripts, results)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller data, fewer steps and levels (about 15 min on 2 idle cores; docs/puzzles.md)")
    parser.add_argument("--worlds", default="sokoban,general_points", help="comma list: sokoban, general_points")
    parser.add_argument("--seed", type=int, default=0)
    add_workers_argument(parser, "SFT runs")


def run(args: argparse.Namespace) -> int:
    import torch

    from mmsft.config_base import ConfigError

    from tasks.puzzles.study_debunk import DebunkSettings, run_study

    torch.set_num_threads(1)
    out = Path(args.out)
    settings = DebunkSettings.quick(out) if args.quick else DebunkSettings(out=out)
    worlds = tuple(w.strip() for w in args.worlds.split(",") if w.strip())
    bad = [w for w in worlds if w not in ("sokoban", "general_points")]
    if bad or not worlds:
        raise ConfigError(f"--worlds {args.worlds!r}: expected a comma list of sokoban, general_points")
    settings.worlds, settings.seed = worlds, args.seed
    apply_workers(settings, args.workers)
    results = run_study(settings)
    print((out / "results.md").read_text())
    print(f"results: {out / 'results.json'}, curves: {out / 'curves.png'}, transcripts: {out}/<world>/transcripts/")
    return 0 if results["worlds"] else 1
