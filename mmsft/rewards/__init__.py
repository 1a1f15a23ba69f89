"""Reward functions: plain callables ``fn(samples, completions, **columns) -> list[float | dict[str, float]]``.

A reward may return one float per completion or a dict of named parts per completion; parts are logged separately
(``reward/<name>/<part>``) and summed into the reward's value. :func:`compute_rewards` combines several rewards with
configured weights. An exception inside a reward is re-raised naming the reward and the sample.
"""

from mmsft.rewards.registry import REWARDS, RewardError, RewardResult, compute_rewards, get_reward, register_reward

__all__ = ["REWARDS", "RewardError", "RewardResult", "compute_rewards", "get_reward", "register_reward"]
