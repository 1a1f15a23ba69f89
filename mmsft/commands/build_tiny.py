"""``mmsft models build-tiny FAMILY OUT_DIR``: write a tiny offline model folder (see :mod:`mmsft.models.tiny`)."""

from __future__ import annotations

import argparse

FAMILIES = ("text", "qwen2-vl", "qwen2.5-vl", "vla")  # mirrors mmsft.models.tiny.FAMILIES (kept stdlib-only here)


def _override(text: str) -> tuple[str, object]:
    """Parse ``key=value`` with ``value`` read as JSON when possible (``hidden_size=128``, ``action_low=-2.5``)."""
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``family``, ``out_dir``, ``--seed`` and repeatable ``--set key=value`` size overrides."""
    parser.add_argument("family", choices=FAMILIES, help="model family to build")
    parser.add_argument("out_dir", help="output folder (created; an earlier model folder there is replaced)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tokenizer corpus and the weights (default 0)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        type=_override,
        metavar="KEY=VALUE",
        help="size override, repeatable: --set hidden_size=128 --set vision_depth=1 --set n_action_bins=256",
    )


def run(args: argparse.Namespace) -> int:
    """Build the folder and print a one-line summary; returns 0."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mmsft.models.tiny import build_tiny

    path = build_tiny(args.family, args.out_dir, seed=args.seed, **dict(args.overrides or []))
    files = sorted(p.name for p in path.iterdir())
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    print(f"wrote tiny {args.family} model to {path} ({len(files)} files, {size / 1e6:.2f} MB): {' '.join(files)}")
    return 0
