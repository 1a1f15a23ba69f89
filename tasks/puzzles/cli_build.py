"""``mmsft data build WORLD ...``: build SFT datasets (JSONL + PNG) from the puzzle worlds' solvers.

Worlds: ``sokoban``, ``general-points`` and every VGRP puzzle as ``vgrp-<name>`` (dispatched to
``tasks.vgrp.api.build_dataset``). Formats: Sokoban ``step|plan|cot``; General Points ``plan|cot``; VGRP
``solution`` (S-SFT) or ``reasoning`` (R-SFT). Only the standard library is imported at module level.

Example::

    mmsft data build sokoban --split train --format step --prompt-diversity actions,symbols --num 1000 --seed 0 \\
        --out data/sokoban-6x6
"""

from __future__ import annotations

import argparse
import json
import sys

DEFAULT_FORMATS = {"sokoban": "step", "general-points": "plan"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("world", help="sokoban, general-points, or vgrp-<puzzle> (e.g. vgrp-sudoku)")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"),
                        help="seed range (disjoint per split)")
    parser.add_argument("--format", default=None,
                        help="sokoban: step|plan|cot (default step); general-points: plan|cot (default plan); "
                             "vgrp: solution|reasoning")
    parser.add_argument("--prompt-diversity", default="none",
                        help="'none', 'all' or a comma list of actions,symbols,cards (sampled per example)")
    parser.add_argument("--families", default="train", choices=("train", "heldout", "fake"),
                        help="which prompt-variant families to sample (heldout for evaluation; fake = held-out "
                             "prompt, base semantics)")
    parser.add_argument("--action-family", default=None, help="pin the action vocabulary family (e.g. emoji)")
    parser.add_argument("--symbol-family", default=None, help="pin the symbol legend family (e.g. ragen_alt)")
    parser.add_argument("--card-family", default=None, help="pin the card values family (e.g. face_ood, all5)")
    parser.add_argument("--num", type=int, default=100, help="number of examples (rows)")
    parser.add_argument("--seed", type=int, default=0, help="build seed")
    parser.add_argument("--out", required=True, help="output folder (<split>.jsonl, images/, manifest.json)")
    parser.add_argument("--modality", default="text", choices=("text", "image", "both"),
                        help="text prompt, image (PNG) prompt, or both")
    parser.add_argument("--suite", default=None,
                        help="sokoban: 6x6-1|6x6-2|8x8-2|10x10-1|10x10-2|10x10-3; general-points: "
                             "4cards|ood-face|5cards|6cards")
    parser.add_argument("--dim", type=int, nargs=2, default=None, metavar=("H", "W"), help="sokoban room size")
    parser.add_argument("--num-boxes", type=int, default=None, help="sokoban box count")
    parser.add_argument("--cell-px", type=int, default=48, help="sokoban image pixels per cell")
    parser.add_argument("--num-cards", type=int, default=None, help="general-points cards per hand (4-6)")
    parser.add_argument("--target", type=int, default=24, help="general-points target number")
    parser.add_argument("--force-face-card", action="store_true", default=None,
                        help="general-points: every hand holds a J, Q or K")
    parser.add_argument("--prompt-style", default="ragen", choices=("ragen", "compact"),
                        help="sokoban prompt family: ragen (the papers' prompt) or compact (board + object listing, "
                             "learnable by tiny models; docs/puzzles.md)")
    parser.add_argument("--size", type=int, default=None, help="vgrp grid size")
    parser.add_argument("--difficulty", default=None, help="vgrp difficulty (easy|medium|hard)")
    parser.add_argument("--grid-style", default=None, choices=("lists", "rows"),
                        help="vgrp grids in targets: lists (VGRP's 2-D lists, default) or rows (one string per row)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tasks.puzzles.dispatch import call_with_accepted, is_vgrp, vgrp_function, vgrp_puzzle

    world = args.world
    try:
        if is_vgrp(world):
            import inspect

            from tasks.puzzles.seeds import SPLIT_BASES

            fn = vgrp_function("build_dataset")
            puzzle = vgrp_puzzle(world)
            takes_split = "split" in inspect.signature(fn).parameters
            result = call_with_accepted(fn, {
                "puzzle": puzzle, "world": world, "split": args.split, "format": args.format,
                "fmt": args.format or "solution", "prompt_diversity": args.prompt_diversity, "num": args.num,
                # without a split parameter, keep splits disjoint by offsetting the seed into the split's range
                "seed": args.seed if takes_split else SPLIT_BASES[args.split] + args.seed,
                "out": args.out, "out_dir": args.out, "modality": args.modality,
                "with_image": args.modality != "text", "size": args.size, "difficulty": args.difficulty,
                "grid_style": args.grid_style})
            print(json.dumps(result, default=str) if result is not None else f"built {world} into {args.out}")
            return 0
        from tasks.puzzles.build import BuildConfig, build_general_points, build_sokoban
        from tasks.puzzles.diversity import parse_axes

        if world not in DEFAULT_FORMATS:
            raise ValueError(f"world={world!r}; expected 'sokoban', 'general-points' or 'vgrp-<puzzle>'")
        pin = {axis: value for axis, value in (("actions", args.action_family), ("symbols", args.symbol_family),
                                               ("cards", args.card_family)) if value is not None}
        cfg = BuildConfig(world=world, out=Path(args.out), split=args.split,
                          format=args.format or DEFAULT_FORMATS[world], num=args.num, seed=args.seed,
                          modality=args.modality, axes=parse_axes(args.prompt_diversity), families=args.families,
                          pin=pin, suite=args.suite, dim=tuple(args.dim) if args.dim else None,
                          num_boxes=args.num_boxes, cell_px=args.cell_px, num_cards=args.num_cards,
                          target=args.target, force_face_card=args.force_face_card, prompt_style=args.prompt_style)
        info = build_sokoban(cfg) if world == "sokoban" else build_general_points(cfg)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        print(f"mmsft data build: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"world": world, "out": args.out, **info}, default=str))
    return 0
