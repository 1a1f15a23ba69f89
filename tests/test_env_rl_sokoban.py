"""Sokoban env-RL end to end, multi-turn: the tiny text model plays one move per turn (observation → model text →
parsed move → env step → next observation), SFT warm-up on per-step solver data (``mmsft data build``), then GRPO
on whole trajectories raises held-out success.

Setup (about 3 minutes of one CPU core). 6×6 rooms with one box, the ``compact`` prompt family (the board plus an
object listing "Box: 1 up of you; target: 2 left of it."; docs/puzzles.md explains why the RAGEN prompt is not
learnable by this model: with it the next-move loss stays at ln 4 for 800 SFT steps). SFT: 500 steps on 3,000 (state
→ optimal next move) rows. GRPO: episodes of up to 8 turns, groups of 8 episodes on the same level, success reward,
every turn prompted with the current board (``env.concat_turns=false``: each turn is a training sequence carrying
its episode's advantage). Held-out evaluation: 384 test-split levels (never trained on: train levels are seeds below
2**31, test levels above 2**31 + 2**30, and by content, tasks/puzzles/seeds.py), 4 sampled episodes per level at
temperature 1, each episode from its own fixed random stream (``AgentLoop.run(episode_streams=True)``), so before
and after face the same levels and the same random numbers episode by episode. Greedy success is printed too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mmsft.cli import main
from mmsft.config import load_config
from mmsft.rollout.env_config import EnvConfig
from mmsft.rollout.evaluate import evaluate_model
from mmsft.train.trainer import Trainer

QUIET = ["train.progress=false", "train.tensorboard=false", "train.torch_threads=1", "train.resume=never"]
LEVELS, SAMPLES, MAX_TURNS = 384, 4, 8
TASK_ARGS = {"prompt_style": "compact"}


def _eval_cfg(temperature: float, samples: int) -> EnvConfig:
    return EnvConfig(mode="multi_turn", max_turns=MAX_TURNS, max_new_tokens_per_turn=8, concat_turns=False,
                     episode_reward="success", eval_episodes=LEVELS, eval_temperature=temperature,
                     eval_samples=samples, log_media=0, log_episodes=0, task_args=dict(TASK_ARGS))


def _per_level_success(model: str, temperature: float, samples: int) -> tuple[np.ndarray, dict]:
    metrics, episodes = evaluate_model(model, "sokoban", _eval_cfg(temperature, samples),
                                       plugins=("tasks.puzzles.env_tasks",), max_length=1024)
    per_level = np.zeros(LEVELS)
    for episode in episodes:
        per_level[episode.group] += episode.success / samples
    return per_level, metrics


@pytest.fixture(scope="module")
def warm_model(tiny_models, tmp_path_factory) -> str:
    """The tiny text model after 500 SFT steps on 3,000 per-step solver rows (``--format step --prompt-style
    compact``)."""
    root = tmp_path_factory.mktemp("sokoban-sft")
    data = root / "data"
    assert main(["data", "build", "sokoban", "--split", "train", "--format", "step", "--prompt-style", "compact",
                 "--num", "3000", "--seed", "0", "--out", str(data)]) == 0
    sft = Trainer(load_config(None, [
        f"model.name_or_path={tiny_models['text']}", f"data.train_path={data / 'train.jsonl'}", "data.max_length=512",
        "optim.lr=1e-3", "optim.scheduler=constant", "train.max_steps=500", "train.micro_batch_size=32",
        f"train.output_dir={root / 'sft'}", *QUIET])).train()
    return str(sft.final_model_dir)


def test_multi_turn_grpo_raises_held_out_sokoban_success(warm_model, tmp_path):
    rl = Trainer(load_config(None, [
        "task=sokoban", "plugins=[tasks.puzzles.env_tasks]", f"model.name_or_path={warm_model}",
        "data.max_length=1024", "algorithm=grpo", "objective.kl.coef=0", "rl.group_size=8", "rl.prompts_per_step=8",
        "rl.temperature=1.0", "env.mode=multi_turn", f"env.max_turns={MAX_TURNS}", "env.max_new_tokens_per_turn=8",
        "env.concat_turns=false", "env.episode_reward=success", "env.task_args={prompt_style: compact}",
        "env.eval_episodes=0", "env.log_media=0", "optim.lr=2e-4", "optim.scheduler=constant",
        "train.max_steps=30", "train.micro_batch_size=64", f"train.output_dir={tmp_path / 'grpo'}", *QUIET])).train()
    after_model = str(rl.final_model_dir)
    before, before_metrics = _per_level_success(warm_model, 1.0, SAMPLES)
    after, after_metrics = _per_level_success(after_model, 1.0, SAMPLES)
    greedy_before = _per_level_success(warm_model, 0.0, 1)[0].mean()
    greedy_after = _per_level_success(after_model, 0.0, 1)[0].mean()
    diff = after - before
    se = diff.std(ddof=1) / math.sqrt(LEVELS)
    print(f"\nheld-out multi-turn Sokoban success ({LEVELS} test levels x {SAMPLES} sampled episodes, <= {MAX_TURNS} "
          f"moves): SFT warm-up {before.mean():.3f} -> after GRPO {after.mean():.3f} (paired diff {diff.mean():+.3f} "
          f"± {se:.3f} s.e.); greedy {greedy_before:.3f} -> {greedy_after:.3f}; parse failures per turn "
          f"{before_metrics['eval/parse_failure_rate']:.3f} -> {after_metrics['eval/parse_failure_rate']:.3f}; "
          f"turns {before_metrics['eval/turns']:.2f} -> {after_metrics['eval/turns']:.2f}")
    # The per-level differences are independent: levels are i.i.d. draws of the generator and every episode samples
    # from its own random stream (no stream is shared between levels), so their mean is ~Normal(μ, se²) (CLT; 384
    # bounded terms). If GRPO did not raise the expected success (μ ≤ 0), a mean above 4·se would occur with
    # probability < 3.2e-5 (one-sided z = 4). The rise must also be at least 3 points of success in absolute terms.
    assert diff.mean() > 4 * se and diff.mean() >= 0.03, (before.mean(), after.mean(), se)
    records = [json.loads(line) for line in (tmp_path / "grpo" / "rollouts" / "env-000000.jsonl").read_text()
               .splitlines()]
    assert records and all(1 <= len(r["turns"]) <= MAX_TURNS for r in records)


@pytest.mark.parametrize("mode", ["multi_turn", "single_turn"])
def test_grpo_step_on_whole_conversations_and_single_turn_plans(warm_model, tmp_path, mode):
    """One GRPO step through ``mmsft train``: multi-turn with the conversation concatenated (each turn sees the
    history; up to 2 moves per turn) and single-turn (the whole plan in one answer, executed move by move): the
    parameters move, transcripts record every turn, GIFs are written and the held-out evaluation runs."""
    from safetensors.torch import load_file

    out = tmp_path / mode
    multi = mode == "multi_turn"
    result = Trainer(load_config(None, [
        "task=sokoban", "plugins=[tasks.puzzles.env_tasks]", f"model.name_or_path={warm_model}",
        "algorithm=grpo", "objective.kl.coef=0", "rl.group_size=8", "rl.prompts_per_step=2", f"env.mode={mode}",
        f"env.max_turns={3 if multi else 1}", "env.max_new_tokens_per_turn=16", "env.eval_episodes=4",
        "env.log_media=1", f"env.task_args={{prompt_style: compact, max_actions_per_turn: {2 if multi else 8}}}",
        "optim.lr=1e-3", "train.max_steps=1", "train.micro_batch_size=8", f"train.output_dir={out}", *QUIET])).train()
    before = load_file(str(Path(warm_model) / "model.safetensors"))
    after = load_file(str(result.final_model_dir / "model.safetensors"))
    assert max(float((before[k] - after[k]).abs().max()) for k in before) > 0
    records = [json.loads(line) for line in (out / "rollouts" / "env-000000.jsonl").read_text().splitlines()]
    assert records and all(1 <= len(r["turns"]) <= (3 if multi else 1) for r in records)
    assert list((out / "rollouts").glob("env-000000-ep0-*.gif"))
    assert "eval/success_rate" in result.metrics and "rollout/parse_failures" in json.loads(
        (out / "metrics.jsonl").read_text().splitlines()[0])
