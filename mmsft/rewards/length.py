"""Length-regularised reward of TLDR (Zhang et al., "Making Small Language Models Efficient Reasoners: Intervention,
Supervision, Reinforcement", arXiv 2505.07961): GRPO with multi-level length control — every prompt carries a level
whose budget B_l the completion should respect, and

    R = R_correct − λ·min(1, max(0, |y| − B_l) / B_l)

(the functional form is the reference notes' reading of the paper, which was not verifiable; λ = 1 and the cap at one
budget's worth of overshoot keep the penalty within [−1, 0]). This reward is the penalty term; combine it with a
correctness reward (``rl.rewards=cls_accuracy,tldr_length``). |y| counts whitespace-separated words (the reward sees
text, not tokens). The budget is ``meta.length_budget`` (words), else ``meta.length_level`` ∈ {short, medium, long}
→ 128 / 512 / 2048 words; a prompt without either has no budget (penalty 0).
"""

from __future__ import annotations

from typing import Any, Sequence

from mmsft.rewards.registry import register_reward

LEVEL_BUDGETS = {"short": 128, "medium": 512, "long": 2048}
PENALTY = 1.0


def budget_of(sample: Any) -> float | None:
    meta = getattr(sample, "meta", None) or {}
    if not isinstance(meta, dict):
        return None
    budget = meta.get("length_budget")
    if isinstance(budget, (int, float)) and not isinstance(budget, bool) and budget > 0:
        return float(budget)
    level = meta.get("length_level")
    return float(LEVEL_BUDGETS[level]) if isinstance(level, str) and level in LEVEL_BUDGETS else None


def length_penalty(length: int, budget: float | None, coef: float = PENALTY) -> float:
    """−coef·min(1, max(0, length − budget)/budget); 0 without a budget."""
    if budget is None:
        return 0.0
    return -coef * min(1.0, max(0.0, length - budget) / budget)


@register_reward("tldr_length")
def tldr_length(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[float]:
    """TLDR's length penalty against the prompt's level budget (add a correctness reward alongside)."""
    return [length_penalty(len(c.split()), budget_of(s)) for s, c in zip(samples, completions)]
