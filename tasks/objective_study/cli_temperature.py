"""``mmsft rl pick-temperature MODEL PROMPTS.jsonl``: the sampling temperature whose temperature-adjusted rollout
entropy is closest to the AceReason target (0.3), for the next RL stage (``rl.temperature``)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model folder")
    parser.add_argument("prompts", help="JSONL of prompts (mmsft schema)")
    parser.add_argument("--target", type=float, default=0.3, help="target H_τ in nats (AceReason: 0.3)")
    parser.add_argument("--low", type=float, default=0.3)
    parser.add_argument("--high", type=float, default=1.5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--num-prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)


def run(args: argparse.Namespace) -> int:
    from mmsft.data.loaders import load_dataset
    from tasks.objective_study.temperature import pick_temperature

    samples = load_dataset(args.prompts)[: args.num_prompts]
    tau, seen = pick_temperature(args.model, samples, args.target, args.low, args.high, args.steps,
                                 max_new_tokens=args.max_new_tokens)
    print(json.dumps({"temperature": tau, "measurements": [{"tau": t, "entropy": h} for t, h in seen]}))
    return 0
