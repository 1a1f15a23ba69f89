"""Offline selectors that need no model: a seeded random subset (the equal-budget baseline) and the long-CoT
branching filter (Li et al., "On the Role of Reasoning Patterns in the Generalization Discrepancy of Long CoT SFT",
arXiv 2604.01702: drop the most frequently branching trajectories, keep the bottom 90 %)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from mmsft.config_base import _f
from mmsft.data.schema import Sample
from mmsft.data.selectors.base import Decision, SelectionEnv, register_selector

DEFAULT_BRANCH_KEYWORDS = ("perhaps", "another", "alternatively", "wait", "maybe", "or we could", "let me try")


@dataclass
class RandomArgs:
    fraction: float = _f(0.5, "Fraction of the samples kept (⌊fraction·n⌋, at least 1).", gt=0, le=1)


@register_selector("random", kind="offline", args=RandomArgs)
def random_subset(samples: Sequence[Sample], args: RandomArgs, env: SelectionEnv) -> list[Decision]:
    """A seeded uniform subset of ⌊fraction·n⌋ samples (the baseline every selector is compared with)."""
    n = len(samples)
    keep = set(np.random.default_rng([env.seed, 7919]).permutation(n)[:max(1, math.floor(args.fraction * n))].tolist())
    return [Decision(i, i in keep, "kept_random" if i in keep else "dropped_random") for i in range(n)]


def branching_ratio(text: str, keywords: Sequence[str] = DEFAULT_BRANCH_KEYWORDS, step_sep: str = "\n\n") -> float:
    """Fraction of the reasoning steps (``step_sep``-separated, blank ones ignored) that contain a branching keyword
    (case-insensitive substring). Linear in ``len(text) × len(keywords)``; 0 for a text without steps."""
    steps = [s for s in text.lower().split(step_sep) if s.strip()] if step_sep else [text.lower()]
    if not steps:
        return 0.0
    words = [k.lower() for k in keywords if k]
    return sum(any(k in step for k in words) for step in steps) / len(steps)


@dataclass
class BranchingArgs:
    keep_fraction: float = _f(0.9, "Fraction of the trajectories kept, the least branching first (paper: 0.9).",
                              gt=0, le=1)
    keywords: list = field(default_factory=lambda: list(DEFAULT_BRANCH_KEYWORDS),
                           metadata={"help": "Branching keywords (case-insensitive).", "choices": None})
    step_sep: str = _f("\n\n", "Separator between reasoning steps.")


@register_selector("branching_filter", kind="offline", args=BranchingArgs)
def branching_filter(samples: Sequence[Sample], args: BranchingArgs, env: SelectionEnv) -> list[Decision]:
    """Keep the ⌈keep_fraction·n⌉ targets with the lowest branching ratio (ties: earlier sample first)."""
    ratios = [branching_ratio(s.target.text if s.target is not None else "", args.keywords, args.step_sep)
              for s in samples]
    order = sorted(range(len(samples)), key=lambda i: (ratios[i], i))
    keep = set(order[:max(1, math.ceil(args.keep_fraction * len(samples) - 1e-9))])
    return [Decision(i, i in keep, "kept_low_branching" if i in keep else "dropped_branching",
                     scores={"branching_ratio": ratios[i]}) for i in range(len(samples))]
