"""The selector registry and the decision records every selector returns.

Two kinds (registry meta ``kind``):

* ``offline`` — ``fn(samples, args, env) -> list[Decision]``, run once before training on the whole training set
  (S3FT, GRAPE, STAT, the long-CoT branching filter, random): each decision keeps or drops one sample, may replace
  its target text and may repeat it (``copies``), and names the reason.
* ``online`` — ``fn(args, env) -> OnlineSelector`` whose ``select(stats, step)`` picks, per optimizer step, which
  of a drawn candidate pool to train on from a no-grad scoring pass of the current model (UDS, Q-Tuning), and
  optionally which supervised tokens keep their loss.

Decisions are counted into ``metrics.jsonl`` (``select/kept``, ``select/dropped``, ``select/<reason>``) and written
to ``<run>/selection/`` (see :mod:`mmsft.data.selectors.hook`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from mmsft.registry import Registry

SELECTORS: Registry = Registry("data selector")
KINDS = ("offline", "online")


def register_selector(name: str, kind: str, args: type) -> Callable[[Any], Any]:
    """``@register_selector("grape", kind="offline", args=GrapeArgs)`` on the selector function / factory."""
    if kind not in KINDS:
        raise ValueError(f"selector {name!r}: kind must be one of {KINDS}, got {kind!r}")
    return SELECTORS.register(name, kind=kind, args=args)


@dataclass
class Decision:
    """What an offline selector decided for ``samples[index]``."""

    index: int
    keep: bool
    reason: str
    target: str | None = None  # replacement target text (S3FT), None: unchanged
    copies: int = 1  # > 1: the sample is trained on several times (STAT resampling)
    weight: float | None = None  # a per-sample loss weight to set (STAT weighting), None: unchanged
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class TokenStats:
    """A candidate's no-grad statistics at its supervised positions (current model)."""

    logp: torch.Tensor  # (n,) log-prob of each target token
    entropy: torch.Tensor  # (n,) predictive entropy at each position
    logits: torch.Tensor | None = None  # (n, V) raw logits, when the selector asks for them


@dataclass
class OnlineDecision:
    keep: list[int]  # indices into the candidate pool, in training order
    reasons: dict[str, int]  # reason -> number of pool candidates
    token_keep: dict[int, torch.Tensor] = field(default_factory=dict)  # pool index -> (n,) bool over its targets
    scores: dict[str, float] = field(default_factory=dict)  # step-level diagnostics (e.g. the bisected quantile)


class OnlineSelector(Protocol):
    needs_logits: bool

    def pool_size(self, samples_per_step: int) -> int: ...

    def select(self, stats: list[TokenStats], step: int) -> OnlineDecision: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class SelectionEnv:
    """What selectors may use: the model being trained (before its first step), its adapter, the run's seed."""

    model: Any = None
    adapter: Any = None
    device: Any = "cpu"
    seed: int = 0
    vocab_subset: torch.Tensor | None = None
    batch_size: int = 8
