"""``mmsft study videorft``: the VideoRFT study on the embedded video world (tasks/video/study.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/videorft-study", help="work folder (data, runs, eval, results, plot)")
    parser.add_argument("--quick", action="store_true", help="smaller world, fewer steps (under 8 minutes)")
    parser.add_argument("--base-model", default="", help="base model folder (default: assets/thinking_base)")
    parser.add_argument("--sft-steps", type=int, default=0, help="CoT-SFT steps (0: the preset's)")
    parser.add_argument("--rl-steps", type=int, default=0, help="GRPO steps per arm (0: the preset's)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import torch

    from tasks.video.study import StudySettings, run_study

    torch.set_num_threads(1)
    out = Path(args.out)
    settings = StudySettings.quick(out) if args.quick else StudySettings(out=out)
    settings.seed = args.seed
    if args.base_model:
        settings.base_model = args.base_model
    if args.sft_steps:
        settings.sft_steps = args.sft_steps
    if args.rl_steps:
        settings.rl_steps = args.rl_steps
    results = run_study(settings)
    print((out / "results.md").read_text())
    print(f"results: {out / 'results.json'}, curves: {out / 'curves.png'}")
    return 0 if results["arms"] else 1
