"""``continual_task_reward``: the reward of joint multi-task RL, where each row names its own task's reward.

Rows written by :class:`mmsft.continual.hooks.JointDataHook` carry ``meta["continual_reward"]`` (a comma-separated
list of reward names, the task's ``reward`` in the experiment file); completions are grouped by it and each group is
scored by those rewards (:func:`mmsft.rewards.compute_rewards`), so one RL stage can train on several tasks' verifiers.
"""

from __future__ import annotations

from typing import Any, Sequence

from mmsft.rewards import compute_rewards, register_reward


@register_reward("continual_task_reward")
def continual_task_reward(samples: Sequence[Any], completions: Sequence[str], **columns: Any) -> list[float]:
    """Each completion scored by the rewards its sample's ``meta["continual_reward"]`` names (total, weights 1)."""
    groups: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        names = (getattr(sample, "meta", None) or {}).get("continual_reward")
        if not isinstance(names, str) or not names.strip():
            raise ValueError(f"sample {getattr(sample, 'id', index)!r} has no meta.continual_reward (the reward of "
                             "its task); continual_task_reward scores rows written by a multitask continual run")
        groups.setdefault(names, []).append(index)
    out = [0.0] * len(completions)
    for names, members in groups.items():
        sub = {k: [v[i] for i in members] for k, v in columns.items() if isinstance(v, (list, tuple))}
        result = compute_rewards([n.strip() for n in names.split(",") if n.strip()], None,
                                 [samples[i] for i in members], [completions[i] for i in members], **sub)
        for i, value in zip(members, result.total):
            out[i] = float(value)
    return out


__all__ = ["continual_task_reward"]
