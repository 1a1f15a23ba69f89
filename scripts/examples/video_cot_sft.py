"""Video chain-of-thought SFT from a script (VideoRFT's first stage, arXiv 2505.12434).

    python scripts/examples/video_cot_sft.py --quick                 # embedded tiny model + video world, ~1 min
    python scripts/examples/video_cot_sft.py --model Qwen/Qwen2.5-VL-7B-Instruct \\
        --data VideoRFT-CoT-102K.json --media-root /data/VideoRFT        # a real checkpoint and the released data
    accelerate launch scripts/examples/video_cot_sft.py ...           # data parallel

With the embedded model the hyperparameters are sized for it (lr 1e-3, 8 frames); any other model gets the paper's
(1 epoch, lr 1e-6, grad-norm 5, 16 frames, bf16, gradient checkpointing): see tasks/video/recipes.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from accelerate import PartialState  # noqa: E402

from mmsft import api  # noqa: E402
from tasks.video.loaders import convert_released  # noqa: E402
from tasks.video.recipes import EMBEDDED_BASE, sft_config, world_data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Video CoT SFT (VideoRFT / Video-R1 CoT format).")
    parser.add_argument("--model", default=str(EMBEDDED_BASE), help="model folder or hub id (the one path to change)")
    parser.add_argument("--data", default="", help="released CoT JSON (Video-R1-COT / VideoRFT-CoT); default: world")
    parser.add_argument("--format", default="video-r1-cot", choices=("video-r1-cot", "videorft-cot"))
    parser.add_argument("--media-root", default="", help="folder the rows' paths are relative to")
    parser.add_argument("--out", default="runs/examples/video_cot_sft")
    parser.add_argument("--max-steps", type=int, default=0, help="0: the recipe's epochs")
    parser.add_argument("--quick", action="store_true", help="a small world and 20 steps")
    args = parser.parse_args(argv)

    out = Path(args.out)
    # one process, or one of an `accelerate launch` (on a machine without GPUs: CPU processes over gloo, as the trainer)
    state = PartialState(cpu=not torch.cuda.is_available())
    if args.data:
        root = Path(args.media_root or Path(args.data).parent)
        train_path = out / "data" / "sft.jsonl"
        if state.is_main_process:  # one process converts, the others wait for the file
            print(convert_released(args.data, train_path, root, args.format).summary())
    else:
        sizes = (28, 14) if args.quick else (140, 70)
        with state.main_process_first():  # the main process writes the data, the others then find it written
            world = world_data(out / "data", num_train=sizes[0], num_eval=sizes[1])
        root, train_path = world.root, world.sft_jsonl
    state.wait_for_everyone()
    max_steps = args.max_steps or (20 if args.quick else 0)
    result = api.train(sft_config(args.model, train_path, root, out / "run", max_steps=max_steps))
    print(f"trained {result.steps} steps on {state.num_processes} process(es); model: {result.final_model_dir}; "
          f"last loss {result.metrics.get('train/loss')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
