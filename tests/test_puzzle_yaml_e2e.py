"""End to end from the shipped YAML recipes (tasks/puzzles/recipes, tasks/vgrp/recipes) through ``mmsft``: build
data, two SFT steps, then two multi-turn GRPO steps through the agent loop with a held-out evaluation — on Sokoban
(text model, one move per turn) and on a VGRP puzzle (Sudoku 4x4, tiny vision-language model, image observations,
retry turns after a wrong answer)."""

from __future__ import annotations

import json
from pathlib import Path

from mmsft.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["train.progress=false", "train.tensorboard=false", "train.save_steps=0"]


def _metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def _changed(before: Path, after: Path) -> bool:
    from safetensors.torch import load_file

    a, b = load_file(str(before / "model.safetensors")), load_file(str(after / "model.safetensors"))
    return max(float((a[k] - b[k]).abs().max()) for k in a) > 0


def test_sokoban_sft_then_multi_turn_grpo_from_yaml(tiny_models, tmp_path):
    data = tmp_path / "data"
    assert main(["data", "build", "sokoban", "--split", "train", "--format", "step", "--prompt-style", "compact",
                 "--num", "32", "--out", str(data)]) == 0
    sft = tmp_path / "sft"
    assert main(["train", str(ROOT / "tasks/puzzles/recipes/sokoban_sft.yaml"),
                 f"model.name_or_path={tiny_models['text']}", f"data.train_path={data / 'train.jsonl'}",
                 "train.max_steps=2", "train.micro_batch_size=4", f"train.output_dir={sft}", *QUIET]) == 0
    assert [m["step"] for m in _metrics(sft) if "train/loss" in m] == [1, 2]
    assert _changed(Path(tiny_models["text"]), sft / "final")
    rl = tmp_path / "rl"
    assert main(["train", str(ROOT / "tasks/puzzles/recipes/sokoban_grpo_multiturn.yaml"),
                 f"model.name_or_path={sft / 'final'}", "train.max_steps=2", "rl.group_size=4",
                 "rl.prompts_per_step=2", "env.max_turns=3", "env.eval_episodes=2", "train.micro_batch_size=16",
                 f"train.output_dir={rl}", *QUIET]) == 0
    steps = [m for m in _metrics(rl) if "rollout/success_rate" in m]
    assert [m["step"] for m in steps] == [1, 2]
    assert all("rollout/parse_failures" in m for m in steps)
    transcripts = [json.loads(x) for x in (rl / "rollouts" / "env-000000.jsonl").read_text().splitlines()]
    assert transcripts and all(1 <= len(t["turns"]) <= 3 for t in transcripts)
    assert any(len(t["turns"]) > 1 for t in transcripts)  # several moves: multi-turn episodes
    assert any("eval/success_rate" in m for m in _metrics(rl))
    # the policy's own tokens were scored by the GRPO loss at both steps (two SFT steps cannot play yet, so groups
    # may tie and advantages be zero; tests/test_env_rl_sokoban.py checks that GRPO learns)
    assert all(m["train/supervised_tokens"] > 0 and "train/pg_loss" in m for m in steps)


def test_vgrp_sft_then_multi_turn_grpo_on_images_from_yaml(tiny_models, tmp_path):
    data = tmp_path / "sudoku"
    assert main(["data", "build", "vgrp-sudoku", "--split", "train", "--format", "solution", "--size", "4",
                 "--grid-style", "rows", "--num", "8", "--out", str(data)]) == 0
    row = json.loads((data / "data.jsonl").read_text().splitlines()[0])
    target = json.loads(row["messages"][1]["content"][0]["text"])
    assert all(isinstance(r, str) and len(r) == 4 for r in target["perception"] + target["answer"])  # rows style
    sft = tmp_path / "sft"
    assert main(["train", str(ROOT / "tasks/vgrp/recipes/sudoku_sft.yaml"),
                 f"model.name_or_path={tiny_models['qwen2-vl']}", f"data.train_path={data / 'data.jsonl'}",
                 "train.max_steps=2", "train.micro_batch_size=2", f"train.output_dir={sft}", *QUIET]) == 0
    assert [m["step"] for m in _metrics(sft) if "train/loss" in m] == [1, 2]
    rl = tmp_path / "rl"
    assert main(["train", str(ROOT / "tasks/vgrp/recipes/sudoku_grpo.yaml"), f"model.name_or_path={sft / 'final'}",
                 "env.observation=image", "env.max_new_tokens_per_turn=24", "train.max_steps=2", "rl.group_size=2",
                 "rl.prompts_per_step=2", "env.eval_episodes=2", "train.micro_batch_size=8",
                 f"train.output_dir={rl}", *QUIET]) == 0
    steps = [m for m in _metrics(rl) if "rollout/success_rate" in m]
    assert [m["step"] for m in steps] == [1, 2]
    transcripts = [json.loads(x) for x in (rl / "rollouts" / "env-000000.jsonl").read_text().splitlines()]
    # 24 tokens cannot hold a 4x4 answer: every attempt fails, so every episode uses both attempts
    assert transcripts and all(len(t["turns"]) == 2 for t in transcripts)
    assert steps[0]["rollout/parse_failures"] >= 1
    assert all(m["train/supervised_tokens"] > 0 and "train/pg_loss" in m for m in steps)
