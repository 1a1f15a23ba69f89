"""Held-out success of a policy in an environment task: a fixed seed set, the same for every evaluation.

:func:`evaluate_episodes` plays ``env.eval_episodes`` levels of ``env.eval_split`` (disjoint from training),
``env.eval_samples`` episodes each, greedily (``env.eval_temperature = 0``, the default) or sampled with a fixed
sampling seed, each episode from its own random stream (``AgentLoop.run(episode_streams=True)``) — so two
evaluations of different weights face the same levels and the same random numbers episode by episode, and their
difference measures the policy, not the draw. Used by the ``env`` producer's periodic evaluation and by
tests and scripts (:func:`evaluate_model`).
"""

from __future__ import annotations

from typing import Any

from mmsft.rollout.agent import AgentLoop, Episode, episode_metrics

EVAL_SAMPLING_SEED = 7_919  # fixed: every evaluation samples with the same random numbers


def evaluate_episodes(loop: AgentLoop, max_levels: int | None = None,
                      prefix: str = "eval") -> tuple[dict[str, float], list[Episode]]:
    """Play the held-out seed set with ``loop``; returns (metrics, episodes)."""
    cfg = loop.cfg
    levels = min(cfg.eval_episodes, max_levels) if max_levels else cfg.eval_episodes
    seeds = [loop.task.level_seed(cfg.eval_split, k) for k in range(levels)]
    if not seeds:
        return {}, []
    episodes = loop.run(seeds, cfg.eval_samples, temperature=cfg.eval_temperature, seed=EVAL_SAMPLING_SEED,
                        max_turns=cfg.eval_max_turns or None, split=cfg.eval_split, frames_for=cfg.log_media,
                        episode_streams=True)
    return episode_metrics(episodes, prefix, cfg.episode_reward), episodes


def evaluate_model(model_path: str, task: str, env_cfg: Any, max_length: int = 4096,
                   plugins: tuple[str, ...] = ()) -> tuple[dict[str, float], list[Episode]]:
    """Load a model folder and evaluate it on ``task`` (for tests and scripts)."""
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.plugins import load_plugins
    from mmsft.rollout.engine import HFGenerateEngine
    from mmsft.rollout.tasks import make_task

    load_plugins(plugins)
    loaded = load_model(model_path)
    adapter = build_adapter(loaded, max_length=max_length)
    loop = AgentLoop(make_task(task, env_cfg, adapter), adapter, HFGenerateEngine(lambda: loaded.model, adapter),
                     env_cfg, max_length=max_length, split_name=env_cfg.eval_split)
    try:
        return evaluate_episodes(loop)
    finally:
        loop.close()
