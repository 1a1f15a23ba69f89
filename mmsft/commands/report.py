"""``mmsft report RUN_DIR``: write ``report.html`` for a run, pipeline or study folder (also written automatically at
the end of each); one self-contained file, images embedded, under ``--max-mb``."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder (metrics.jsonl), a pipeline folder (matrix.json) or a study folder")
    parser.add_argument("--out", default=None, help="output file (default: RUN_DIR/report.html)")
    parser.add_argument("--max-mb", type=float, default=3.0,
                        help="size budget in MB: media (thumbnails, GIFs, videos) are dropped first (default 3)")
    parser.add_argument("--samples", type=int, default=6, help="rollouts / training samples shown per run (default 6)")
    parser.add_argument("--thumb-px", type=int, default=256, help="longest side of image thumbnails (default 256)")


def run(args: argparse.Namespace) -> int:
    from mmsft.report import ReportError, ReportOptions, build_report

    if args.max_mb <= 0 or args.samples < 0 or args.thumb_px < 16:
        raise ReportError(f"--max-mb must be > 0, --samples >= 0 and --thumb-px >= 16 (got {args.max_mb}, "
                          f"{args.samples}, {args.thumb_px})")
    path = build_report(args.run_dir, args.out, ReportOptions(max_mb=args.max_mb, samples=args.samples,
                                                             thumb_px=args.thumb_px))
    print(f"report: {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0
