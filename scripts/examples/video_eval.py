"""Evaluate a model with VideoRFT's protocol from a script (arXiv 2505.12434, ``eval_bench.py``): temperature 0.1,
top-p 0.001, 32 frames at 256·28² (separate from training's 16), MC accuracy, MRA for regression, results by problem
type and data source.

    python scripts/examples/video_eval.py --quick                            # embedded tiny model, held-out world
    python scripts/examples/video_eval.py --model runs/examples/video_cot_sft/run/final
    python scripts/examples/video_eval.py --model /ckpt/VideoRFT --data Video-R1-eval/mvbench.json \\
        --media-root /data/Video-R1-eval
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from accelerate import PartialState  # noqa: E402

from mmsft import api  # noqa: E402
from tasks.video import plugin  # noqa: E402,F401  (registers the videorft_eval evaluator)
from tasks.video.recipes import EMBEDDED_BASE, eval_spec, world_data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="VideoRFT-protocol evaluation.")
    parser.add_argument("--model", default=str(EMBEDDED_BASE), help="model folder or hub id (the one path to change)")
    parser.add_argument("--data", default="", help="released-format eval JSON; default: the world's held-out split")
    parser.add_argument("--media-root", default="")
    parser.add_argument("--out", default="runs/examples/video_eval")
    parser.add_argument("--max-samples", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=0, help="ignored (accepted so every example takes it)")
    parser.add_argument("--quick", action="store_true", help="the first 14 held-out rows")
    args = parser.parse_args(argv)

    out = Path(args.out)
    # one process, or one of an `accelerate launch` (on a machine without GPUs: CPU processes over gloo, as the trainer)
    state = PartialState(cpu=not torch.cuda.is_available())
    if args.data:
        data, media_root = Path(args.data), args.media_root
    else:
        sizes = (28, 14) if args.quick else (140, 70)
        with state.main_process_first():  # the main process writes the data, the others then find it written
            world = world_data(out / "data", num_train=sizes[0], num_eval=sizes[1])
        data, media_root = world.eval_json, ""
    spec = eval_spec(args.model, data, max_samples=args.max_samples or (14 if args.quick else 0))
    if media_root:
        spec["media_root"] = media_root
    metrics = api.evaluate(args.model, evaluator="videorft_eval", out_dir=out / "eval", **spec)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
