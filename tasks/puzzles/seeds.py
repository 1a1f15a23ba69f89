"""Disjoint, reproducible splits: by seed range (train below 2**31, as in verl-agent; val and test above) *and by
content*.

Seed ranges alone do not keep evaluation levels out of training: small worlds repeat themselves. Measured: 3,000
train seeds of 6x6 Sokoban with one box give only 2,004 distinct levels, and 246 of 500 test-seed levels were also
training levels. So every instance also belongs to a split by its content: a hash of its content key (the exact
start state of a Sokoban level; the card count, target and sorted card values of a General Points hand) picks one
of 10 buckets — 8 train, 1 val, 1 test — and :func:`split_seed` draws seeds from the split's range until the
instance's bucket is the split's. A test instance can then never equal a training instance, whatever the seeds.
"""

from __future__ import annotations

import hashlib
from typing import Callable

SPLIT_BASES = {"train": 0, "val": 2**31, "test": 2**31 + 2**30}
_SPAN = 2**30
CONTENT_BUCKETS = {"train": range(0, 8), "val": range(8, 9), "test": range(9, 10)}
"""Content buckets (of 10) per split: 80 % / 10 % / 10 % of the instance space."""
MAX_TRIES = 1000


def example_seed(split: str, seed: int, index: int | str) -> int:
    """Seed of example ``index`` of ``split`` for build seed ``seed``; splits never share a seed."""
    if split not in SPLIT_BASES:
        raise ValueError(f"split={split!r}; expected one of {sorted(SPLIT_BASES)}")
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return SPLIT_BASES[split] + int.from_bytes(digest[:8], "little") % _SPAN


def content_split(key: str) -> str:
    """The split an instance with content key ``key`` belongs to."""
    bucket = int.from_bytes(hashlib.sha256(f"content:{key}".encode()).digest()[:8], "little") % 10
    return next(split for split, buckets in CONTENT_BUCKETS.items() if bucket in buckets)


def split_seed(split: str, seed: int, index: int, content_key: Callable[[int], str]) -> int:
    """The seed of example ``index`` of ``split``: the first of ``example_seed(split, seed, index)``, then
    ``index/1``, ``index/2``, ... whose instance (``content_key(seed)``) belongs to ``split`` by content."""
    for attempt in range(MAX_TRIES):
        candidate = example_seed(split, seed, index if attempt == 0 else f"{index}/{attempt}")
        if content_split(content_key(candidate)) == split:
            return candidate
    raise RuntimeError(f"no {split} instance by content after {MAX_TRIES} seeds (example {index}); the instance "
                       "space is too small for content-disjoint splits")


def variant_key(split: str, seed: int, index: int, step: int = 0) -> str:
    """String seed for the per-example prompt-variant RNG."""
    return f"variant:{split}:{seed}:{index}:{step}"


def sokoban_key(level: object) -> str:
    """Content key of a Sokoban level: its exact start state."""
    return level.content_hash()  # type: ignore[attr-defined]


def hand_key(hand: object) -> str:
    """Content key of a General Points hand: the arithmetic problem (card count, target, sorted values)."""
    values = sorted(hand.values)  # type: ignore[attr-defined]
    return f"{len(values)}|{hand.target}|{values}"  # type: ignore[attr-defined]
