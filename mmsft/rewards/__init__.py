"""Reward functions: plain callables ``fn(samples, completions, **columns) -> list[float | dict[str, float]]``.

A reward may return one float per completion or a dict of named parts per completion; parts are logged separately
(``reward/<name>/<part>``) and summed into the reward's value. :func:`compute_rewards` combines several rewards with
configured weights. An exception inside a reward is re-raised naming the reward and the sample.

Built-in rewards (importing this package registers them): ``json_structure`` (RL-Struct), ``tool_call``,
``tldr_length`` (TLDR), ``sql_execution`` / ``sql_partial`` (Think2SQL, sandboxed). Rewards that need a model are
factories a plugin registers with its model: :func:`mmsft.rewards.confidence.conmax_reward` (ConMax) and
:func:`mmsft.rewards.similarity.encoder_cosine_reward` ("Shaping Explanations").
"""

from mmsft.rewards.registry import REWARDS, RewardError, RewardResult, compute_rewards, get_reward, register_reward
from mmsft.rewards import length as _length  # noqa: E402,F401  (tldr_length)
from mmsft.rewards import sql as _sql  # noqa: E402,F401  (sql_execution, sql_partial)
from mmsft.rewards import structure as _structure  # noqa: E402,F401  (json_structure)
from mmsft.rewards import tools as _tools  # noqa: E402,F401  (tool_call)

__all__ = ["REWARDS", "RewardError", "RewardResult", "compute_rewards", "get_reward", "register_reward"]
