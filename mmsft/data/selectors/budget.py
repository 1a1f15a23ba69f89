"""Budget knobs between SFT and the stages after it.

* :func:`split_sft_rl` — the SFT–GRPO prompt overlap as a hyperparameter (Su, Zhang, Lyu; arXiv 2604.13515): ρ =
  fraction of RL prompts that also appear in the SFT set; lower overlap was monotonically better (default 0).
* :func:`budget_split` — "Balancing the Budget" (Raghavendra, Kang, Ritter; arXiv 2502.11284): a fixed annotation
  budget spent on SFT demonstrations vs preference pairs with per-item costs, with a minimum SFT warm-start share
  (preference tuning straight from the base model suffers a cold start; < 1,000 examples → all SFT).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def split_sft_rl(pool: Sequence[str], n_sft: int, n_rl: int, overlap: float = 0.0,
                 seed: int = 0) -> tuple[list[str], list[str], float]:
    """(SFT ids, RL ids, realised ρ): ⌊overlap·n_rl⌋ RL prompts are drawn from the SFT set, the rest from prompts
    outside it. Raises when the pool is too small for the request."""
    if not 0.0 <= overlap <= 1.0 or not math.isfinite(overlap):
        raise ValueError(f"overlap must be in [0, 1], got {overlap}")
    if n_sft < 0 or n_rl < 0:
        raise ValueError(f"n_sft and n_rl must be >= 0, got {n_sft}, {n_rl}")
    if len(set(pool)) != len(pool):
        raise ValueError("the prompt pool has duplicate ids")
    shared = math.floor(overlap * n_rl)
    if shared > n_sft:
        raise ValueError(f"overlap {overlap} needs {shared} shared prompts but the SFT set has only {n_sft}")
    fresh = n_rl - shared
    if n_sft + fresh > len(pool):
        raise ValueError(f"{n_sft} SFT + {fresh} RL-only prompts need {n_sft + fresh} distinct prompts; the pool has "
                         f"{len(pool)}")
    order = [pool[i] for i in np.random.default_rng([seed, 19]).permutation(len(pool))]
    sft = order[:n_sft]
    reused = [sft[i] for i in np.random.default_rng([seed, 23]).permutation(n_sft)[:shared]] if shared else []
    rl = reused + order[n_sft:n_sft + fresh]
    rho = len(set(rl) & set(sft)) / len(rl) if rl else 0.0
    return sft, rl, rho


def budget_split(budget: float, sft_fraction: float, cost_sft: float = 1.0, cost_pref: float = 1.0,
                 min_sft_fraction: float = 0.1, all_sft_below: int = 1000) -> tuple[int, int]:
    """(number of SFT demonstrations, number of preference pairs) bought with ``budget``.

    The SFT share is at least ``min_sft_fraction``; a budget that buys fewer than ``all_sft_below`` SFT examples in
    total goes entirely to SFT (the paper's small-budget finding)."""
    for name, value in (("budget", budget), ("cost_sft", cost_sft), ("cost_pref", cost_pref)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value}")
    for name, value in (("sft_fraction", sft_fraction), ("min_sft_fraction", min_sft_fraction)):
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if math.floor(budget / cost_sft) < all_sft_below:
        return math.floor(budget / cost_sft), 0
    share = max(sft_fraction, min_sft_fraction)
    n_sft = math.floor(share * budget / cost_sft)
    return n_sft, math.floor((budget - n_sft * cost_sft) / cost_pref)
