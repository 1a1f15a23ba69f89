"""``env:`` config section: how the agent loop plays an environment task (``task: NAME`` at the top level).

The number of GRPO groups per rollout batch is ``rl.prompts_per_step`` and the group size ``rl.group_size`` (the
episodes of a group share one level / init state); sampling settings (temperature, top-p, top-k) come from ``rl``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmsft.config_base import _f

MODES = ("multi_turn", "single_turn")
OBSERVATIONS = ("text", "image", "both")
EVAL_SPLITS = ("val", "test")
EPISODE_REWARDS = ("return", "success")


@dataclass
class EnvConfig:
    mode: str = _f("multi_turn", "multi_turn: one action per turn, the next observation after each; single_turn: "
                                 "one answer per episode (e.g. the whole plan), then the episode ends.", MODES)
    observation: str = _f("text", "What the policy sees each turn (the task renders it into the prompt).",
                          OBSERVATIONS)
    max_turns: int = _f(8, "Turn budget per episode; an episode still running after it is truncated.", ge=1)
    max_new_tokens_per_turn: int = _f(0, "Generation cap per turn (0: rl.max_new_tokens). Tasks emitting a fixed "
                                         "number of action tokens (VLA) use their own count.", ge=0)
    max_episode_tokens: int = _f(0, "Token budget of one trajectory sequence, prompts included (0: data.max_length); "
                                    "an episode that would exceed it is truncated before the next turn.", ge=0)
    concat_turns: bool = _f(True, "true: the trajectory is one conversation (each prompt sees the history) and one "
                                  "training sequence; false: every turn is prompted with its observation alone and "
                                  "trained as its own sequence carrying the episode's reward (Markovian agents, VLAs).")
    episode_reward: str = _f("return", "Sequence reward: the episode return (sum of per-turn rewards, format "
                                       "penalties included) or 1/0 success.", EPISODE_REWARDS)
    seed: int = _f(0, "Level seed of the task's seed ranges (the same seed and split as `mmsft data build`).", ge=0)
    train_levels: int = _f(0, "Cycle over the first N training levels (0: a fresh level for every group).", ge=0)
    eval_split: str = _f("test", "Seed range of the held-out levels (disjoint from training).", EVAL_SPLITS)
    eval_episodes: int = _f(32, "Held-out levels per evaluation (a fixed seed set of env.eval_split).", ge=0)
    eval_temperature: float = _f(0.0, "Sampling temperature of evaluation episodes (0: greedy).", ge=0.0)
    eval_samples: int = _f(1, "Episodes per held-out level (> 1 with eval_temperature > 0: the policy's expected "
                              "success, sampled with fixed seeds so evaluations compare like for like).", ge=1)
    eval_max_turns: int = _f(0, "Turn budget during evaluation (0: max_turns).", ge=0)
    log_episodes: int = _f(4, "Episode transcripts per rollout batch written to <run>/rollouts/ (JSONL).", ge=0)
    log_media: int = _f(2, "Episodes per rollout batch saved as GIF when the task renders frames (0: none).", ge=0)
    task_args: dict = _f({}, "Task-specific keyword arguments, e.g. {dim: [6, 6], num_boxes: 1} for sokoban.")
