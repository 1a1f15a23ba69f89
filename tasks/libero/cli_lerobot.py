"""``mmsft data export-lerobot`` / ``mmsft data import-lerobot``: episode folders to and from LeRobot v3.0 datasets
(:mod:`tasks.libero.lerobot`). Only the standard library is imported at module level.

Examples::

    mmsft data export-lerobot data/libero_spatial_task0 --out data/libero_spatial_task0_lerobot
    mmsft data import-lerobot data/some_lerobot_libero_dataset --out data/imported   # then: mmsft train ...
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="export: an episode folder; import: a LeRobot v3.0 dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="new output folder")
    parser.add_argument("--fps", type=int, default=20, help="export: frames per second (LIBERO control: 20 Hz)")
    parser.add_argument("--codec", default="libx264", choices=("libx264", "libx264rgb", "libsvtav1"),
                        help="export: video codec (libx264rgb: lossless RGB)")


def run(args: argparse.Namespace) -> int:
    """Bad input (DataError / ValueError) is reported by the CLI on one line with exit code 2."""
    if getattr(args, "data_command", "") == "export-lerobot":
        from tasks.libero.lerobot import export_lerobot

        info = export_lerobot(args.source, args.out, fps=args.fps, codec=args.codec)
        print(f"wrote LeRobot {info['codebase_version']} dataset {args.out}: {info['total_episodes']} episodes, "
              f"{info['total_frames']} frames, {info['total_tasks']} tasks")
        return 0
    from tasks.libero.lerobot import import_lerobot

    count = import_lerobot(args.source, args.out)
    print(f"wrote {count} episodes to {args.out} (train on it with data.train_path={args.out})")
    return 0
