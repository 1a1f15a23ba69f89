"""Ready-made settings for the example scripts and the study: the embedded video-world data, and run configs for
CoT SFT, GRPO with VideoRFT's rewards (± semantic, ± T-GRPO) and VideoRFT-protocol evaluation — sized for the
embedded tiny base model, or the papers' values for a real checkpoint (arXiv 2505.12434, 2503.21776).

``is_tiny(model)`` decides: the embedded base (``assets/shapes_base``) or any folder whose config has a hidden
size below 1024 gets the tiny settings; anything else (``Qwen/Qwen2.5-VL-7B-Instruct``) gets the papers'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.video.loaders import convert_released

REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_BASE = REPO_ROOT / "assets" / "shapes_base"
"""The embedded tiny Qwen2.5-VL base (the default model of the examples)."""


@dataclass
class WorldData:
    root: Path
    train_json: Path  # released Video-R1 format with process (CoT) and solution
    eval_json: Path
    sft_jsonl: Path  # mmsft JSONL: CoT SFT rows
    rl_jsonl: Path  # mmsft JSONL: RL prompts


def world_data(work_dir: str | Path, num_train: int = 140, num_eval: int = 70, seed: int = 0) -> WorldData:
    """Generate the video reasoning world into ``work_dir/world`` (reused when it is already there with the same
    sizes and seed) and convert its train split into SFT and RL JSONL files."""
    from tasks.video.world import generate_world

    root = Path(work_dir) / "world"
    stamp = root / "world.json"
    wanted = {"num_train": num_train, "num_eval": num_eval, "seed": seed}
    train, evaluation = root / "train.json", root / "eval.json"
    sft, rl = root / "sft.jsonl", root / "rl.jsonl"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == wanted):
        generate_world(root, num_train, num_eval, seed=seed)
        convert_released(train, sft, root, "video-r1-cot")
        convert_released(train, rl, root, "video-r1")
        stamp.write_text(json.dumps(wanted))  # written last: a folder with a stamp is complete
    return WorldData(root, train, evaluation, sft, rl)


def is_tiny(model: str | Path) -> bool:
    config = Path(model) / "config.json"
    if not config.is_file():
        return False
    values = json.loads(config.read_text())
    text = values.get("text_config") or values
    return int(text.get("hidden_size", values.get("hidden_size", 4096))) < 1024


def sft_config(model: str | Path, train_path: str | Path, media_root: str | Path, out_dir: str | Path,
               max_steps: int = 0) -> dict[str, Any]:
    """CoT SFT (VideoRFT ``run_sft_video.sh``: 1 epoch, lr 1e-6, grad-norm 5, 16 frames; tiny: lr 1e-3, 8 frames)."""
    tiny = is_tiny(model)
    return {
        "stage": "sft", "plugins": ["tasks.video.plugin"],
        "model": {"name_or_path": str(model), "dtype": "float32" if tiny else "bfloat16",
                  "gradient_checkpointing": not tiny},
        "data": {"train_path": str(train_path), "media_roots": [str(media_root)], "max_length": 1024 if tiny else 16384,
                 "video_max_frames": 8 if tiny else 16, "video_max_pixels": 128 * 28 * 28},
        "objective": {"name": "sft"},
        "optim": {"lr": 1e-3 if tiny else 1e-6, "max_grad_norm": 5.0, "warmup_ratio": 0.05},
        "train": {"output_dir": str(out_dir), "max_steps": max_steps, "epochs": 3.0 if tiny else 1.0,
                  "micro_batch_size": 4 if tiny else 1, "grad_accum": 1 if tiny else 2,
                  "torch_threads": 1 if tiny else 0,
                  "progress": False, "tensorboard": False, "resume": "never"},
    }


def grpo_config(model: str | Path, train_path: str | Path, media_root: str | Path, out_dir: str | Path,
                semantic: bool = True, tgrpo: bool = False, max_steps: int = 0,
                semantic_encoder: str = "") -> dict[str, Any]:
    """GRPO with VideoRFT's rewards (preset ``videorft``; ``tgrpo`` switches Video-R1's T-GRPO on); tiny: G = 4,
    2 prompts per step, 160 new tokens, lr 2e-5."""
    tiny = is_tiny(model)
    rewards = ["videorft_accuracy", "videorft_format"] + (["videorft_semantic"] if semantic else []) + \
        ["videorft_length"]
    config: dict[str, Any] = {
        "algorithm": "videorft", "plugins": ["tasks.video.plugin"],
        "model": {"name_or_path": str(model), "dtype": "float32" if tiny else "bfloat16",
                  "gradient_checkpointing": not tiny},
        "data": {"train_path": str(train_path), "media_roots": [str(media_root)], "max_length": 1024 if tiny else 16384,
                 "video_max_frames": 8 if tiny else 16, "video_max_pixels": 128 * 28 * 28},
        "rl": {"rewards": ",".join(rewards), "reward_weights": "", "log_completions": 8},
        "stage_args": {"tgrpo": tgrpo, "semantic_encoder": semantic_encoder},
        "train": {"output_dir": str(out_dir), "max_steps": max_steps, "progress": False, "tensorboard": False,
                  "resume": "never"},
    }
    if tiny:
        config["rl"].update({"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 160,
                             "generation_batch_size": 16})
        config["optim"] = {"lr": 2e-5, "weight_decay": 0.01, "max_grad_norm": 5.0}
        config["train"].update({"micro_batch_size": 8, "torch_threads": 1})
        config["objective"] = {"kl": {"coef": 0.0}}
    else:
        config["train"].update({"micro_batch_size": 1})
    return config


def eval_spec(model: str | Path, eval_json: str | Path, max_samples: int = 0) -> dict[str, Any]:
    """Arguments of the ``videorft_eval`` evaluator (VideoRFT: temperature 0.1, top-p 0.001, 1024 tokens,
    32 frames at 256·28²; tiny: greedy, 160 tokens, 8 frames)."""
    tiny = is_tiny(model)
    spec: dict[str, Any] = {"path": str(eval_json), "format": "video-r1", "max_samples": max_samples}
    if tiny:
        spec.update({"max_new_tokens": 160, "temperature": 0.0, "frames": 8, "batch_size": 16})
    return spec


__all__ = ["EMBEDDED_BASE", "WorldData", "eval_spec", "grpo_config", "is_tiny", "sft_config", "world_data"]
