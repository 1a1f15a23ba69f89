"""The ``env`` producer: the agent loop plays an environment task, GRPO-style updates on whole trajectories.

Selected by ``task: NAME`` in a recipe (a registered environment task, :data:`mmsft.rollout.tasks.ENV_TASKS`).
Per rollout batch: ``rl.prompts_per_step`` training levels (fresh ones, or cycling over ``env.train_levels``) are
each played by a group of ``rl.group_size`` episodes that share the level; every episode becomes one training
sequence (``env.concat_turns``, the default) or one per turn, rewarded with the episode return; then
:class:`~mmsft.train.rollout_batches.RLStepBuilder` computes old / reference / teacher log-probs where needed (a
callable teacher's values recorded during the episode are used as they are), the configured advantages and the
``ppo_epochs × mini_batches`` schedule. An episode the env could not start (``Episode.started`` False, e.g. a
LIBERO reset that failed; counted in ``rollout/start_failures``, the reason in its transcript and the env's log) is
left out of training: it has no tokens, and it is not counted in its group's reward statistics either (it is no
sample of the policy, so it must not pull the group baseline or make an all-equal group look informative); the
group's advantages come from its started episodes. It still counts as a failure in ``rollout/success_rate``.
:meth:`EnvProducer.evaluate` plays a fixed held-out seed set (greedy by default) and reports the success rate.

Every rank plays the same episodes (same weights, same seeds); the step builder gives each rank its share.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from mmsft.rollout.agent import AgentLoop, Episode, episode_metrics
from mmsft.rollout.engine import HFGenerateEngine
from mmsft.rollout.episode_log import write_episode_logs
from mmsft.rollout.evaluate import evaluate_episodes
from mmsft.rollout.tasks import make_task
from mmsft.train.rollout_batches import QueuedRolloutProducer, RLStepBuilder, ScoredSequence
from mmsft.train.stage import StageContext, register_producer

ENV_FIELDS = ("old_logp", "ref_logp", "teacher_logp", "teacher_dist", "advantages", "group_id")


def scored_sequences(episodes: list[Episode], reward_mode: str) -> list[ScoredSequence]:
    """One :class:`ScoredSequence` per training sequence of each episode (the episode's reward and group)."""
    out = []
    for episode in episodes:
        parts = {"success": float(episode.success), "env_return": episode.episode_return,
                 "turns": float(len(episode.turns)), "parse_failures": float(episode.parse_failures)}
        for sequence in episode.sequences:
            out.append(ScoredSequence(encoded=sequence.encoded, reward=episode.reward(reward_mode),
                                      group=episode.group, sample_id=sequence.encoded.sample_id,
                                      sampler_logp=sequence.sampler_logp, truncated=episode.truncated,
                                      parts=dict(parts), fields=dict(sequence.fields)))
    return out


def drop_zero_std_groups(episodes: list[Episode], reward_mode: str) -> tuple[list[Episode], int]:
    """Dynamic sampling without refill (DAPO, arXiv 2503.14476): groups whose rewards are all equal carry no
    policy-gradient signal; they are dropped and counted (all kept if every group would be dropped)."""
    groups: dict[int, list[Episode]] = {}
    for episode in episodes:
        groups.setdefault(episode.group, []).append(episode)
    kept = [g for g in groups.values() if len(g) > 1 and float(np.std([e.reward(reward_mode) for e in g])) > 0]
    if not kept:
        return episodes, 0
    return [e for g in kept for e in g], len(groups) - len(kept)


def training_episodes(episodes: list[Episode], reward_mode: str,
                      dynamic_sampling: bool) -> tuple[list[Episode], dict[str, float]]:
    """The episodes a rollout batch trains on: those the env started (the exclusion policy of the module
    docstring), then, with ``dynamic_sampling``, without all-equal groups; returns them and counts."""
    started = [e for e in episodes if e.started]
    stats: dict[str, float] = {}
    if dynamic_sampling:
        started, dropped = drop_zero_std_groups(started, reward_mode)
        stats["rollout/dropped_zero_std_groups"] = float(dropped)
    return started, stats


class EnvProducer(QueuedRolloutProducer):
    """Rollout batches from the agent loop; see the module docstring."""

    provides = frozenset(ENV_FIELDS)

    def __init__(self, ctx: StageContext) -> None:
        cfg = ctx.cfg
        if not getattr(cfg, "task", ""):
            raise ValueError("the env producer needs config key 'task' (a registered environment task, e.g. sokoban)")
        self.ctx, self.cfg, self.rl = ctx, cfg, cfg.rl
        self.env_cfg = dataclasses.replace(cfg.env, max_new_tokens_per_turn=cfg.env.max_new_tokens_per_turn
                                           or cfg.rl.max_new_tokens)
        if self.rl.group_size < 1 or self.rl.prompts_per_step < 1:
            raise ValueError("rl.group_size and rl.prompts_per_step must be >= 1")
        if self.env_cfg.eval_episodes < 0 or self.env_cfg.train_levels < 0:
            raise ValueError("env.eval_episodes and env.train_levels must be >= 0")
        self.task = make_task(cfg.task, self.env_cfg, ctx.adapter)
        engine = HFGenerateEngine(lambda: ctx.policy.model, ctx.adapter, batch_size=self.rl.generation_batch_size)
        self.loop = AgentLoop(self.task, ctx.adapter, engine, self.env_cfg, max_length=cfg.data.max_length)
        self.builder = RLStepBuilder(ctx)
        self.state: dict[str, int] = {"levels_started": 0, "rollout_batches": 0, "evaluations": 0}
        self._queue: list[list[Any]] = []
        self._metrics: dict[str, float] = {}

    # ---- levels -------------------------------------------------------------------------------------------------
    def _train_seeds(self) -> list[int]:
        seeds = []
        for _ in range(self.rl.prompts_per_step):
            index = self.state["levels_started"]
            if self.env_cfg.train_levels:
                index %= self.env_cfg.train_levels
            seeds.append(self.task.level_seed("train", index))
            self.state["levels_started"] += 1
        return seeds

    # ---- rollout batches ----------------------------------------------------------------------------------------
    def _refill(self) -> None:
        started = time.perf_counter()
        batch = self.state["rollout_batches"]
        mode = self.env_cfg.episode_reward
        episodes = self.loop.run(self._train_seeds(), self.rl.group_size, temperature=self.rl.temperature,
                                 top_p=self.rl.top_p, top_k=self.rl.top_k,
                                 seed=self.cfg.train.seed * 1_000_003 + batch, frames_for=self.env_cfg.log_media)
        stats = episode_metrics(episodes, "rollout", mode)
        stats["time/generation_s"] = time.perf_counter() - started
        trained, counts = training_episodes(episodes, mode, self.rl.dynamic_sampling)
        stats.update(counts)
        sequences = scored_sequences(trained, mode)
        stats["rollout/episodes_without_sequence"] = float(sum(not e.sequences for e in trained))
        if self.ctx.rank == 0 and self.ctx.run_dir is not None:
            write_episode_logs(self.ctx.run_dir / "rollouts", f"env-{batch:06d}", episodes, self.task.name, mode,
                               self.env_cfg.log_episodes, self.env_cfg.log_media)
        self._queue = self.builder.build(sequences, stats, batch)
        self.state["rollout_batches"] += 1
        self._metrics = stats

    def evaluate(self, max_levels: int | None = None) -> dict[str, float]:
        """Held-out success on the fixed seed set (:func:`mmsft.rollout.evaluate.evaluate_episodes`)."""
        metrics, episodes = evaluate_episodes(self.loop, max_levels)
        if episodes and self.ctx.rank == 0 and self.ctx.run_dir is not None:
            write_episode_logs(self.ctx.run_dir / "rollouts", f"eval-{self.state['evaluations']:04d}", episodes,
                               self.task.name, self.env_cfg.episode_reward, self.env_cfg.log_episodes,
                               self.env_cfg.log_media)
        self.state["evaluations"] += 1
        return metrics

    # ---- producer protocol --------------------------------------------------------------------------------------
    def steps_per_rollout(self) -> int:
        return self.builder.steps_per_rollout()

    def steps_per_epoch(self) -> int:
        """Rollout batches to see every training level once (one batch when levels are unbounded) × steps each."""
        levels = self.env_cfg.train_levels
        batches = -(-levels // self.rl.prompts_per_step) if levels else 1
        return batches * self.steps_per_rollout()

    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = {**self.state, **{k: int(v) for k, v in state.items()}}

    def close(self) -> None:
        self.loop.close()


@register_producer("env", provides=ENV_FIELDS, needs_dataset=False, records=("teacher_logp", "teacher_dist"))
def build_env_producer(ctx: StageContext) -> EnvProducer:
    return EnvProducer(ctx)
