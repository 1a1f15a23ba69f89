"""General Points as an LLM/VLM task: prompt, SFT targets (answer-only / cot) and the verifier.

Prompt and answer format follow the GP-L/GP-VL tasks of "SFT Memorizes, RL Generalizes" (arXiv 2501.17161) as used
by "Debunk the Myth of SFT Generalization" (arXiv 2510.00237): the rule for face cards is stated in the prompt,
the answer is JSON ``{"cards": [...], "number": [...], "formula": "..."}``. With prompt diversity the face-card
values are sampled per example and the target and verifier use the same values (fake variants excepted).
"""

from __future__ import annotations

import json
from typing import Any

from envs.general_points.cards import LABEL_TO_RANK, Card, CardValues, Hand
from envs.general_points.reward import DEFAULT_REWARDS, score_answer
from envs.general_points.solver import solve_with_steps
from envs.verdict import Verdict
from tasks.puzzles.diversity import Variant
from tasks.puzzles.parsing import parse_gp_answer

FORMATS = ("plan", "cot")
MODALITIES = ("text", "image", "both")
_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def build_prompt(hand: Hand, variant: Variant, fmt: str, modality: str) -> str:
    """The user prompt for one hand."""
    if fmt not in FORMATS:
        raise ValueError(f"general-points format={fmt!r}; expected one of {FORMATS} ('step' is Sokoban only)")
    if modality not in MODALITIES:
        raise ValueError(f"modality={modality!r}; expected one of {MODALITIES}")
    n = len(hand.cards)
    where = {"text": "listed below", "image": "shown in the image", "both": "shown in the image and listed below"}
    lines = [
        f"You are an expert {hand.target} points card game player. You are observing these "
        f"{_NUMBER_WORDS.get(n, str(n))} cards {where[modality]}.",
        f"Note that {variant.cards_shown.describe()}, and each card must be used once.",
        f"Your goal is to output a formula that evaluates to {hand.target} using numbers from the cards and "
        "operators such as '+', '-', '*', '/', '(', ')'.",
    ]
    if modality in ("text", "both"):
        lines.append(f"Input: Cards: {hand.labels}")
    example = json.dumps({"cards": ["x", "y", "z"], "number": [1, 2, 3], "formula": "an equation"})
    if fmt == "cot":
        lines.append("Think step by step inside <think> </think>, then output a JSON object of the form "
                     f"{example}.")
    else:
        lines.append(f"Output only a JSON object of the form {example}.")
    return "\n".join(lines)


def make_hand(labels: list[str], suits: list[str], values: CardValues, target: int) -> Hand:
    """A Hand under ``values`` (used to rewrite targets when the variant changes the card values)."""
    cards = tuple(Card(LABEL_TO_RANK[label], suit) for label, suit in zip(labels, suits))
    vals = tuple(values.value(c.rank) for c in cards)
    found = solve_with_steps(vals, target)
    return Hand(cards, vals, target, "" if found is None else found[0])


def target_text(hand: Hand, fmt: str) -> str | None:
    """SFT target: JSON answer (``plan``) or ``<think>`` solver steps then JSON (``cot``); None if unsolvable."""
    found = solve_with_steps(hand.values, hand.target)
    if found is None:
        return None
    formula, steps = found
    body = json.dumps({"cards": hand.labels, "number": list(hand.values), "formula": formula})
    if fmt == "plan":
        return body
    if fmt != "cot":
        raise ValueError(f"general-points format={fmt!r}; expected one of {FORMATS}")
    reading = ", ".join(f"{label} = {v}" for label, v in zip(hand.labels, hand.values))
    think = (f"<think>The cards are {', '.join(hand.labels)}, so the numbers are {reading}. "
             f"I need to reach {hand.target} using each number once. " + ". ".join(steps) +
             f". So the formula is {formula}.</think>")
    return f"{think} {body}"


def make_answer(hand: Hand) -> dict[str, Any]:
    """The verifier-ready answer stored with an example (values are the verifier's values)."""
    return {"world": "general-points", "cards": hand.labels, "suits": [c.suit for c in hand.cards],
            "values": list(hand.values), "target": hand.target}


def verify(answer: dict[str, Any], response: str, rewards: dict[str, float] = DEFAULT_REWARDS) -> Verdict:
    """Tolerant parse then the strict formula check; unparsable responses score as illegal formulas.

    Total on any response text: the outcome is the parser's (``too_long``, ``no_json``, ...) when nothing could be
    read, else the reward table's (``illegal_formula`` with ``details["reason"]``, ``correct``, ...)."""
    for key in ("cards", "suits", "values", "target"):
        if key not in answer:
            raise KeyError(f"general-points answer is missing key {key!r}; got keys {sorted(answer)}")
    cards = tuple(Card(LABEL_TO_RANK[label], suit) for label, suit in zip(answer["cards"], answer["suits"]))
    hand = Hand(cards, tuple(int(v) for v in answer["values"]), int(answer["target"]), "")
    parsed = parse_gp_answer(response)
    if not parsed.ok:
        return Verdict(outcome=parsed.outcome, reward=float(rewards["illegal_formula"]), success=False,
                       parse_ok=False, details={"detail": parsed.detail} if parsed.detail else {})
    return score_answer(hand, parsed.value, rewards)
