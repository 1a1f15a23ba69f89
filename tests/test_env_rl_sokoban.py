"""Sokoban env-RL end to end: SFT warm-up on solver data (``mmsft data build``), then GRPO inside the environment
raises held-out success; and one multi-turn GRPO step on whole conversations.

Setup (measured on one CPU core; ≈ 2 minutes): 6×6 rooms with one box, ``single_turn`` mode (the model writes the
whole plan, which the env executes move by move), success reward. The tiny text model (hidden size 64, two layers)
learns the answer format from the warm-up but not yet the board → move mapping (its next-move loss stays at the
uniform 1.39 nats for hundreds of steps), so its greedy plan is one fixed move sequence for every board, and greedy
success jumps between the few plans it can emit. The quantity GRPO improves smoothly is the *policy's* success — the
sampled plans' — so the held-out evaluation samples 4 plans per level with fixed sampling seeds (the same random
numbers before and after, so the comparison is paired) on 256 test-split levels never trained on. Greedy numbers are
printed too.
"""

from __future__ import annotations

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
LEVELS, SAMPLES = 256, 4


def _eval_cfg(temperature: float, samples: int) -> EnvConfig:
    return EnvConfig(mode="single_turn", max_turns=1, max_new_tokens_per_turn=16, episode_reward="success",
                     eval_episodes=LEVELS, eval_temperature=temperature, eval_samples=samples, log_media=0,
                     log_episodes=0, task_args={"max_actions_per_turn": 8})


def _per_level_success(model: str) -> tuple[np.ndarray, dict]:
    metrics, episodes = evaluate_model(model, "sokoban", _eval_cfg(1.0, SAMPLES), plugins=("tasks.puzzles.env_tasks",))
    per_level = np.zeros(LEVELS)
    for episode in episodes:
        per_level[episode.group] += episode.success / SAMPLES
    return per_level, metrics


def _greedy(model: str) -> float:
    metrics, _ = evaluate_model(model, "sokoban", _eval_cfg(0.0, 1), plugins=("tasks.puzzles.env_tasks",))
    return metrics["eval/success_rate"]


@pytest.fixture(scope="module")
def warm_model(tiny_models, tmp_path_factory) -> str:
    """The tiny text model after 150 SFT steps on 1,500 solver plans (``mmsft data build sokoban --format plan``)."""
    root = tmp_path_factory.mktemp("sokoban-sft")
    data = root / "data"
    assert main(["data", "build", "sokoban", "--split", "train", "--format", "plan", "--num", "1500", "--seed", "0",
                 "--out", str(data)]) == 0
    sft = Trainer(load_config(None, [
        f"model.name_or_path={tiny_models['text']}", f"data.train_path={data / 'train.jsonl'}", "data.max_length=640",
        "optim.lr=3e-3", "optim.scheduler=constant", "train.max_steps=150", "train.micro_batch_size=16",
        f"train.output_dir={root / 'sft'}", *QUIET])).train()
    return str(sft.final_model_dir)


def test_grpo_raises_held_out_sokoban_success(warm_model, tmp_path):
    warm = warm_model
    rl = Trainer(load_config(None, [
        "task=sokoban", "plugins=[tasks.puzzles.env_tasks]", f"model.name_or_path={warm}", "data.max_length=1024",
        "algorithm=grpo", "objective.kl.coef=0", "rl.group_size=8", "rl.prompts_per_step=8", "rl.temperature=1.0",
        "env.mode=single_turn", "env.max_turns=1", "env.max_new_tokens_per_turn=16", "env.episode_reward=success",
        "env.task_args={max_actions_per_turn: 8}", "env.eval_episodes=0", "env.log_media=0",
        "optim.lr=5e-4", "optim.scheduler=constant", "train.max_steps=30", "train.micro_batch_size=64",
        f"train.output_dir={tmp_path / 'grpo'}", *QUIET])).train()
    before, before_metrics = _per_level_success(warm)
    after, after_metrics = _per_level_success(str(rl.final_model_dir))
    greedy_before, greedy_after = _greedy(warm), _greedy(str(rl.final_model_dir))
    diff = after - before
    se = diff.std(ddof=1) / math.sqrt(LEVELS)
    print(f"\nheld-out Sokoban success ({LEVELS} test levels x {SAMPLES} sampled plans): "
          f"SFT warm-up {before.mean():.3f} -> after GRPO {after.mean():.3f} (paired diff {diff.mean():+.3f} "
          f"± {se:.3f} s.e.); greedy {greedy_before:.3f} -> {greedy_after:.3f}; parse failures "
          f"{before_metrics['eval/parse_failure_rate']:.3f} -> {after_metrics['eval/parse_failure_rate']:.3f}")
    # A strict rise that noise cannot produce: the 256 per-level differences are independent (distinct levels,
    # fixed sampling seeds), so their mean is ~Normal(μ, se²) by the CLT; μ ≤ 0 would give a mean above 4·se with
    # probability < 3.2e-5 (one-sided z = 4). The rise is also at least 3 points of success in absolute terms.
    assert diff.mean() > 4 * se and diff.mean() >= 0.03, (before.mean(), after.mean(), se)
    assert (tmp_path / "grpo" / "rollouts" / "env-000000.jsonl").is_file()


def test_multi_turn_grpo_step_on_whole_conversations(warm_model, tmp_path):
    """One GRPO step on concatenated multi-turn trajectories (up to 8 moves per turn, the new board after each turn)
    through ``mmsft train``: the parameters move and the transcripts record every turn."""
    import json

    from safetensors.torch import load_file

    out = tmp_path / "mt"
    result = Trainer(load_config(None, [
        "task=sokoban", "plugins=[tasks.puzzles.env_tasks]", f"model.name_or_path={warm_model}",
        "algorithm=grpo", "objective.kl.coef=0", "rl.group_size=8", "rl.prompts_per_step=2",
        "env.max_turns=3", "env.max_new_tokens_per_turn=16", "env.eval_episodes=4",
        "env.log_media=1", "env.task_args={max_actions_per_turn: 8}", "optim.lr=1e-3", "train.max_steps=1",
        "train.micro_batch_size=8",
        f"train.output_dir={out}", *QUIET])).train()
    before = load_file(str(Path(warm_model) / "model.safetensors"))
    after = load_file(str(result.final_model_dir / "model.safetensors"))
    assert max(float((before[k] - after[k]).abs().max()) for k in before) > 0
    records = [json.loads(line) for line in (out / "rollouts" / "env-000000.jsonl").read_text().splitlines()]
    assert records and all(1 <= len(r["turns"]) <= 3 for r in records)
    assert list((out / "rollouts").glob("env-000000-ep0-*.gif"))
    assert "eval/success_rate" in result.metrics and "rollout/parse_failures" in json.loads(
        (out / "metrics.jsonl").read_text().splitlines()[0])
