"""Build the embedded semantic-reward encoder: a tiny SigLIP trained on the video world (tasks/video/siglip_tiny.py).

Usage::

    python scripts/build_video_siglip.py [--out assets/video_siglip_tiny] [--steps 1500] [--seed 0]

Deterministic (one torch thread); a few minutes on a laptop CPU. Writes a Hugging Face model folder plus
``build_report.json`` (wall time, held-out retrieval accuracy and semantic-reward gap).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def main(argv: list[str] | None = None) -> int:
    from tasks.video.siglip_tiny import build_tiny_siglip

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "assets" / "video_siglip_tiny"))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = build_tiny_siglip(args.out, steps=args.steps, batch_size=args.batch_size, seed=args.seed)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
