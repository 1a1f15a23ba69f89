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

A response longer than :data:`envs.verdict.MAX_RESPONSE_CHARS` is not read: outcome ``too_long`` with the
``illegal_formula`` reward (see :func:`too_long_verdict`). An ``illegal_formula`` verdict carries the formula checker's reason in ``details["reason"]`` (see
:data:`envs.general_points.formula.REASONS`: ``too_long``, ``non_ascii_digit``, ``unbalanced``, ...). Card values in
the ``number`` field count only when written with ASCII digits. Answers are model output: scoring never raises on
their content and its work is linear in their size.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from envs.general_points.cards import LABEL_TO_RANK, Hand
from envs.general_points.formula import MAX_FORMULA_CHARS, MAX_NUMBER_DIGITS, FormulaError, evaluate
from envs.verdict import MAX_RESPONSE_CHARS, TOO_LONG, Verdict

DEFAULT_REWARDS: dict[str, float] = {"correct": 5.0, "partial": 1.0, "no_solution": -1.0, "wrong_cards": -1.5,
                                     "wrong_numbers": -2.0, "illegal_formula": -3.0}
NO_SOLUTION_WORDS = ("no solution", "none", "impossible", "")


_MAX_FIELD_ITEMS = 64  # a hand has at most a handful of cards; longer ``cards``/``number`` lists are wrong outright


def _normalise_label(card: Any) -> int | None:
    if not isinstance(card, (str, int)) or isinstance(card, bool):
        return None
    text = str(card)
    if len(text) > 8:
        return None
    return LABEL_TO_RANK.get(text.strip().upper().strip("'\""))


def _card_value(item: Any) -> int | None:
    """A card value written as an int or as ASCII digits (``"１２"`` and ``"١٢"`` are not numbers here)."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item
    if isinstance(item, str):
        text = item.strip()
        if 0 < len(text) <= MAX_NUMBER_DIGITS and text.isascii() and text.isdigit():
            return int(text)
    return None


def _read_numbers(field_value: Any) -> Counter | None:
    if not isinstance(field_value, (list, tuple)) or len(field_value) > _MAX_FIELD_ITEMS:
        return None
    values = [_card_value(n) for n in field_value]
    return None if any(v is None for v in values) else Counter(values)


def score_answer(hand: Hand, answer: Mapping[str, Any], rewards: Mapping[str, float] = DEFAULT_REWARDS) -> Verdict:
    """Score an answer dict with key ``formula`` and optional ``cards`` (labels) and ``number`` (values)."""
    missing = set(DEFAULT_REWARDS) - set(rewards)
    if missing:
        raise KeyError(f"rewards is missing outcomes {sorted(missing)}; expected keys {sorted(DEFAULT_REWARDS)}")

    def verdict(outcome: str, **details: Any) -> Verdict:
        return Verdict(outcome=outcome, reward=float(rewards[outcome]), success=outcome == "correct", details=details)

    cards = answer.get("cards")
    if cards is not None:
        ok_shape = isinstance(cards, (list, tuple)) and len(cards) <= _MAX_FIELD_ITEMS
        perceived = [_normalise_label(c) for c in cards] if ok_shape else None
        if perceived is None or Counter(perceived) != Counter(c.rank for c in hand.cards):
            return verdict("wrong_cards", perceived=cards if ok_shape else type(cards).__name__,
                           expected=hand.labels)
    numbers_field = answer.get("number", answer.get("numbers"))
    if numbers_field is not None and _read_numbers(numbers_field) != Counter(hand.values):
        shown = numbers_field if isinstance(numbers_field, (list, tuple)) and len(numbers_field) <= _MAX_FIELD_ITEMS \
            else type(numbers_field).__name__
        return verdict("wrong_numbers", number=shown, values=list(hand.values))
    formula = answer.get("formula")
    if isinstance(formula, int) and not isinstance(formula, bool):
        if formula.bit_length() > 4 * MAX_NUMBER_DIGITS:  # > MAX_NUMBER_DIGITS decimal digits; never str() it
            return verdict("illegal_formula", reason="number_too_long", error="formula is a huge integer")
        formula = str(formula)
    if formula is None or (isinstance(formula, str) and len(formula) <= MAX_FORMULA_CHARS
                           and formula.strip().lower() in NO_SOLUTION_WORDS):
        return verdict("no_solution")
    try:
        value, numbers = evaluate(formula)
    except FormulaError as exc:
        return verdict("illegal_formula", reason=exc.reason, error=str(exc))
    available = Counter(hand.values)
    used = Counter(numbers)
    if used - available:
        return verdict("wrong_numbers", used=numbers, values=list(hand.values))
    if used == available and value == hand.target:
        return verdict("correct", value=str(value))
    return verdict("partial", value=str(value), used=numbers)


def too_long_verdict(length: int, rewards: Mapping[str, float] = DEFAULT_REWARDS) -> Verdict:
    """The verdict for a response over :data:`~envs.verdict.MAX_RESPONSE_CHARS` (scored like an illegal formula)."""
    return Verdict(outcome=TOO_LONG, reward=float(rewards["illegal_formula"]), parse_ok=False,
                   details={"chars": length, "max_chars": MAX_RESPONSE_CHARS})
