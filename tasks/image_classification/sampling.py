"""Few-shot sampling, the base-to-new class split and CLS-RL's option lists.

* :func:`sample_k_shot` follows CoOp's ``generate_fewshot_dataset`` (Zhou et al., "Learning to Prompt for
  Vision-Language Models", IJCV 2022): per class, ``k`` items drawn without replacement (all items, or draws with
  replacement when ``repeat=True``, if a class has fewer than ``k``), with a seed.
* :func:`split_base_new` is CoOp's ``subsample_classes``: labels in order, the first ``ceil(n / 2)`` are *base*
  classes, the rest *new* classes.
* :func:`option_count` and :func:`build_options` are CLS-RL's option lists (Li et al., arXiv 2503.16188,
  ``few-shot-data.ipynb``): ``k = int(0.4 × #classes)``; if ``k < 30`` every class is listed; at most 100; the
  label is always included and the list is shuffled (here seeded per sample).
"""

from __future__ import annotations

import math
import random
from typing import Sequence

MIN_OPTIONS = 30
"""Below this many options CLS-RL lists every class."""

MAX_OPTIONS = 100
"""CLS-RL caps the option list at 100 classes (ImageNet, SUN397)."""

OPTION_FRACTION = 0.4


def sample_k_shot(labels: Sequence[int], k: int, seed: int, repeat: bool = False) -> list[int]:
    """Indices of a CoOp-style k-shot subset: ``k`` items per class, classes in sorted label order.

    Each class draws with ``random.Random(f"coop-{seed}-{label}")``, so adding a class does not change the picks of
    another one. A class with fewer than ``k`` items contributes all of them (or ``k`` draws with replacement when
    ``repeat`` is true, as CoOp's ``repeat=True``). The result is sorted by class, then by draw order.
    """
    if k < 1:
        raise ValueError(f"k (shots per class) must be >= 1, got {k}")
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(index)
    if not by_class:
        raise ValueError("cannot sample a k-shot subset of an empty dataset")
    chosen: list[int] = []
    for label in sorted(by_class):
        items = by_class[label]
        rng = random.Random(f"coop-{seed}-{label}")
        if len(items) >= k:
            chosen.extend(rng.sample(items, k))
        elif repeat:
            chosen.extend(rng.choices(items, k=k))
        else:
            chosen.extend(items)
    return chosen


def split_base_new(classnames: Sequence[str]) -> tuple[list[str], list[str]]:
    """CoOp's base-to-new split in label order: ``(first ceil(n/2) classes, the remaining classes)``."""
    names = list(classnames)
    if len(names) < 2:
        raise ValueError(f"a base-to-new split needs at least 2 classes, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique for a base-to-new split")
    half = math.ceil(len(names) / 2)
    return names[:half], names[half:]


def option_count(num_classes: int) -> int:
    """Number of options CLS-RL lists for a dataset of ``num_classes`` classes.

    ``k = int(0.4 × n)``; every class (``n``) if ``k < 30``; never more than 100.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    k = int(OPTION_FRACTION * num_classes)
    if k < MIN_OPTIONS:
        k = num_classes
    return min(k, MAX_OPTIONS)


def build_options(label: str, classnames: Sequence[str], seed: int | str) -> list[str]:
    """CLS-RL's shuffled option list for one sample: ``label`` plus ``option_count(n) - 1`` other classes.

    ``seed`` seeds this sample's draw (use e.g. ``f"{global_seed}-{sample_id}"``): the same seed gives the same
    list. ``classnames`` are the candidate classes (the base classes in base-to-new training).
    """
    names = list(dict.fromkeys(classnames))
    if label not in names:
        raise ValueError(f"label {label!r} is not one of the {len(names)} candidate classes")
    rng = random.Random(f"cls-options-{seed}")
    k = option_count(len(names))
    others = [c for c in names if c != label]
    options = [label] + rng.sample(others, k - 1)
    rng.shuffle(options)
    return options


__all__ = ["MAX_OPTIONS", "MIN_OPTIONS", "build_options", "option_count", "sample_k_shot", "split_base_new"]
