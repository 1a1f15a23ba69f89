"""Rollouts: generation engines behind one interface (HF ``generate`` by default) and the agent loop that plays
batched environments (:mod:`mmsft.rollout.agent`, :mod:`mmsft.rollout.envs`, :mod:`mmsft.rollout.tasks`).

Exports are resolved lazily so that ``mmsft.config`` can import :mod:`mmsft.rollout.env_config` without torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "HFGenerateEngine": "mmsft.rollout.engine",
    "Rollout": "mmsft.rollout.engine",
    "RolloutEngine": "mmsft.rollout.engine",
    "SamplingParams": "mmsft.rollout.engine",
    "EnvConfig": "mmsft.rollout.env_config",
    "ENV_TASKS": "mmsft.rollout.tasks",
    "EnvTask": "mmsft.rollout.tasks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmsft.rollout' has no attribute {name!r}")
