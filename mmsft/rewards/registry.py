"""Reward registry and the weighted combination of rewards (see the package docstring for the contract)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from mmsft.registry import Registry, RegistryError

RewardFn = Callable[..., Sequence[Any]]
REWARDS: Registry = Registry("reward")


class RewardError(RuntimeError):
    """A reward failed or returned something unusable; the message names the reward and the sample."""


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """``@register_reward("name")`` — a plain callable ``fn(samples, completions, **columns) -> list``."""
    return REWARDS.register(name)


def get_reward(name: str) -> RewardFn:
    """A registered reward by name, or any callable by ``'package.module:function'``."""
    fn = REWARDS.get(name).fn
    if not callable(fn):
        raise RegistryError(f"reward {name!r} is not callable (got {type(fn).__name__})")
    return fn


@dataclass
class RewardResult:
    total: list[float]
    parts: dict[str, list[float]] = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        out = {"reward/total": sum(self.total) / max(len(self.total), 1)}
        out.update({f"reward/{k}": sum(v) / max(len(v), 1) for k, v in self.parts.items()})
        return out


def _sample_id(samples: Sequence[Any], index: int) -> str:
    sample = samples[index] if index < len(samples) else None
    return str(getattr(sample, "id", index))


def _locate_failure(name: str, fn: RewardFn, samples: Sequence[Any], completions: Sequence[str],
                    columns: dict[str, Any], exc: Exception) -> str:
    """Re-run the reward one completion at a time to name the first sample it fails on."""
    for index in range(len(completions)):
        one = {k: [v[index]] if isinstance(v, (list, tuple)) and len(v) == len(completions) else v
               for k, v in columns.items()}
        try:
            fn([samples[index]], [completions[index]], **one)
        except Exception as single:  # noqa: BLE001 - reported, not swallowed
            text = completions[index]
            shown = text if len(text) <= 80 else text[:77] + "..."
            return (f"reward {name!r} raised {type(single).__name__}: {single} on sample "
                    f"{_sample_id(samples, index)!r} (completion {index}: {shown!r})")
    return f"reward {name!r} raised {type(exc).__name__}: {exc} (on the batch of {len(completions)} completions)"


def compute_rewards(names: Sequence[str], weights: Sequence[float] | None, samples: Sequence[Any],
                    completions: Sequence[str], **columns: Any) -> RewardResult:
    """Call each reward on the batch, validate, log its parts and combine: total = Σ_r weight_r · value_r."""
    weights = list(weights) if weights else [1.0] * len(names)
    if len(weights) != len(names):
        raise ValueError(f"got {len(weights)} reward weights for {len(names)} rewards {list(names)}")
    if len(samples) != len(completions):
        raise ValueError(f"{len(samples)} samples but {len(completions)} completions")
    total = [0.0] * len(completions)
    parts: dict[str, list[float]] = {}
    for name, weight in zip(names, weights):
        fn = get_reward(name)
        try:
            values = list(fn(samples, completions, **columns))
        except Exception as exc:
            raise RewardError(_locate_failure(name, fn, samples, completions, columns, exc)) from exc
        if len(values) != len(completions):
            raise RewardError(f"reward {name!r} returned {len(values)} values for {len(completions)} completions")
        scalar = []
        for index, value in enumerate(values):
            where = f"reward {name!r} on sample {_sample_id(samples, index)!r}"
            if isinstance(value, dict):
                for part, part_value in value.items():
                    parts.setdefault(f"{name}/{part}", [0.0] * len(completions))[index] = float(part_value)
                value = sum(float(v) for v in value.values())
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise RewardError(f"{where}: expected a float or a dict of floats, got {value!r}") from None
            if not math.isfinite(value):
                raise RewardError(f"{where}: value is {value}")
            scalar.append(value)
        parts[name] = scalar
        total = [t + weight * v for t, v in zip(total, scalar)]
    return RewardResult(total, parts)
