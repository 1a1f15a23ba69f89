"""Video GRPO with VideoRFT's rewards from a script (arXiv 2505.12434; T-GRPO of Video-R1, arXiv 2503.21776).

    python scripts/examples/video_grpo.py --quick                          # embedded tiny model + video world
    python scripts/examples/video_grpo.py --quick --tgrpo --no-semantic    # Video-R1's T-GRPO instead
    python scripts/examples/video_grpo.py --model /ckpt/VideoRFT-SFT --data VideoRFT-RL-310K.json \\
        --media-root /data/VideoRFT --semantic-encoder google/siglip-so400m-patch14-384
    accelerate launch scripts/examples/video_grpo.py ...

Reward = accuracy (per problem type) + format + semantic consistency (SigLIP; the embedded tiny SigLIP by default) +
length bonus, GRPO with G = 8, β = 0.04 (k3), temperature 1, top-p 0.95 (preset ``videorft``); the embedded model
gets G = 4, 2 prompts per step, 160 new tokens (tasks/video/recipes.py).
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
from tasks.video.recipes import EMBEDDED_BASE, grpo_config, world_data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Video GRPO with VideoRFT rewards.")
    parser.add_argument("--model", default=str(EMBEDDED_BASE), help="model folder or hub id (the one path to change)")
    parser.add_argument("--data", default="", help="released RL JSON (Video-R1-260k / VideoRFT-RL); default: world")
    parser.add_argument("--format", default="video-r1", choices=("video-r1", "videorft-rl"))
    parser.add_argument("--media-root", default="")
    parser.add_argument("--semantic-encoder", default="", help="SigLIP folder (default: the embedded tiny SigLIP)")
    parser.add_argument("--no-semantic", action="store_true", help="drop the semantic-consistency reward")
    parser.add_argument("--tgrpo", action="store_true", help="T-GRPO: an extra shuffled-frame group per video prompt")
    parser.add_argument("--out", default="runs/examples/video_grpo")
    parser.add_argument("--max-steps", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small world and 2 steps")
    args = parser.parse_args(argv)

    out = Path(args.out)
    # one process, or one of an `accelerate launch` (on a machine without GPUs: CPU processes over gloo, as the trainer)
    state = PartialState(cpu=not torch.cuda.is_available())
    if args.data:
        root = Path(args.media_root or Path(args.data).parent)
        train_path = out / "data" / "rl.jsonl"
        if state.is_main_process:  # one process converts, the others wait for the file
            print(convert_released(args.data, train_path, root, args.format).summary())
    else:
        sizes = (28, 14) if args.quick else (140, 70)
        with state.main_process_first():  # the main process writes the data, the others then find it written
            world = world_data(out / "data", num_train=sizes[0], num_eval=sizes[1])
        root, train_path = world.root, world.rl_jsonl
    state.wait_for_everyone()
    config = grpo_config(args.model, train_path, root, out / "run", semantic=not args.no_semantic, tgrpo=args.tgrpo,
                         max_steps=args.max_steps or (2 if args.quick else 30), semantic_encoder=args.semantic_encoder)
    result = api.train(config)
    shown = {k: round(v, 3) for k, v in result.metrics.items() if k.startswith(("reward/", "tgrpo/"))}
    print(f"trained {result.steps} steps on {state.num_processes} process(es); model: {result.final_model_dir}; "
          f"{shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
