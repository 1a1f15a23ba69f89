"""Disjoint, reproducible seed ranges per split (train below 2**31, as in verl-agent; val and test above)."""

from __future__ import annotations

import hashlib

SPLIT_BASES = {"train": 0, "val": 2**31, "test": 2**31 + 2**30}
_SPAN = 2**30


def example_seed(split: str, seed: int, index: int) -> int:
    """Seed of example ``index`` of ``split`` for build seed ``seed``; splits never share a seed."""
    if split not in SPLIT_BASES:
        raise ValueError(f"split={split!r}; expected one of {sorted(SPLIT_BASES)}")
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return SPLIT_BASES[split] + int.from_bytes(digest[:8], "little") % _SPAN


def variant_key(split: str, seed: int, index: int, step: int = 0) -> str:
    """String seed for the per-example prompt-variant RNG."""
    return f"variant:{split}:{seed}:{index}:{step}"
