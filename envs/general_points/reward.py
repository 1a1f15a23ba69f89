"""Scoring a General Points answer with the reward table of "SFT Memorizes, RL Generalizes" (arXiv 2501.17161).

Outcomes, checked in this order, and their default rewards:

=================== ====== ==========================================================================
outcome             reward meaning
=================== ====== ==========================================================================
``wrong_cards``     -1.5   the answer's ``cards`` field (the perceived hand) does not match the hand
``no_solution``     -1     no formula, or the answer claims there is no solution (every hand is solvable)
``illegal_formula`` -3     the formula does not parse (bad symbols, brackets, division by zero)
``wrong_numbers``   -2     the ``number`` field (card values) is wrong, or the formula uses a number not in
                           the hand or a card value too often
``partial``         +1     legal, uses only hand values but not all of them, or the value is not the target
``correct``         +5     every card value used exactly once and the value equals the target
=================== ====== ==========================================================================
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from envs.general_points.cards import LABEL_TO_RANK, Hand
from envs.general_points.formula import FormulaError, evaluate

DEFAULT_REWARDS: dict[str, float] = {"correct": 5.0, "partial": 1.0, "no_solution": -1.0, "wrong_cards": -1.5,
                                     "wrong_numbers": -2.0, "illegal_formula": -3.0}
NO_SOLUTION_WORDS = ("no solution", "none", "impossible", "")


@dataclass(frozen=True)
class GPVerdict:
    """Result of scoring one answer."""

    outcome: str
    reward: float
    success: bool
    details: dict = field(default_factory=dict)


def _normalise_label(card: Any) -> int | None:
    text = str(card).strip().upper().strip("'\"")
    return LABEL_TO_RANK.get(text)


def score_answer(hand: Hand, answer: Mapping[str, Any], rewards: Mapping[str, float] = DEFAULT_REWARDS) -> GPVerdict:
    """Score an answer dict with key ``formula`` and optional ``cards`` (labels) and ``number`` (values)."""
    missing = set(DEFAULT_REWARDS) - set(rewards)
    if missing:
        raise KeyError(f"rewards is missing outcomes {sorted(missing)}; expected keys {sorted(DEFAULT_REWARDS)}")

    def verdict(outcome: str, **details: Any) -> GPVerdict:
        return GPVerdict(outcome, float(rewards[outcome]), outcome == "correct", details)

    cards = answer.get("cards")
    if cards is not None:
        perceived = [_normalise_label(c) for c in cards] if isinstance(cards, (list, tuple)) else None
        if perceived is None or Counter(perceived) != Counter(c.rank for c in hand.cards):
            return verdict("wrong_cards", perceived=cards, expected=hand.labels)
    numbers_field = answer.get("number", answer.get("numbers"))
    if numbers_field is not None:
        try:
            read = Counter(int(str(n).strip()) for n in numbers_field)
        except (TypeError, ValueError):
            read = None
        if read != Counter(hand.values):
            return verdict("wrong_numbers", number=numbers_field, values=list(hand.values))
    formula = answer.get("formula")
    if formula is None or (isinstance(formula, str) and formula.strip().lower() in NO_SOLUTION_WORDS):
        return verdict("no_solution")
    try:
        value, numbers = evaluate(str(formula))
    except FormulaError as exc:
        return verdict("illegal_formula", error=str(exc))
    available = Counter(hand.values)
    used = Counter(numbers)
    if used - available:
        return verdict("wrong_numbers", used=numbers, values=list(hand.values))
    if used == available and value == hand.target:
        return verdict("correct", value=str(value))
    return verdict("partial", value=str(value), used=numbers)
