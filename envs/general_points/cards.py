"""Cards, card-value mappings and hand sampling for General Points (the 24-game family).

General Points comes from "SFT Memorizes, RL Generalizes" (Chu et al., arXiv 2501.17161); its text variant GP-L is
used by "Debunk the Myth of SFT Generalization" (arXiv 2510.00237). Four cards (ranks 1..13, A = 1) are dealt and
the player writes a formula over the card values that equals the target (24), using every card exactly once.
In-distribution, J/Q/K count as 10; the out-of-distribution rule counts them as 11/12/13 (with at least one face
card forced into the hand); instruction variants give every face card another value (e.g. all 5 or all 7).
Only solvable hands are kept. A hand is a pure function of ``(config, seed)``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from envs.general_points.solver import solve

RANK_LABELS = {1: "A", 11: "J", 12: "Q", 13: "K"}
SUITS = ("spades", "hearts", "diamonds", "clubs")
LABEL_TO_RANK = {**{str(r): r for r in range(2, 11)}, "A": 1, "J": 11, "Q": 12, "K": 13, "1": 1}


def rank_label(rank: int) -> str:
    """Printed label of a rank (A, 2..10, J, Q, K)."""
    if not 1 <= rank <= 13:
        raise ValueError(f"rank={rank}: expected 1..13")
    return RANK_LABELS.get(rank, str(rank))


@dataclass(frozen=True)
class CardValues:
    """Values of J, Q and K (A is always 1, number cards their rank)."""

    jack: int = 10
    queen: int = 10
    king: int = 10

    def value(self, rank: int) -> int:
        if not 1 <= rank <= 13:
            raise ValueError(f"rank={rank}: expected 1..13")
        return {11: self.jack, 12: self.queen, 13: self.king}.get(rank, rank)

    def describe(self) -> str:
        if self.jack == self.queen == self.king:
            return f"'J', 'Q', and 'K' count as {self.jack}"
        return f"'J' counts as {self.jack}, 'Q' counts as {self.queen}, and 'K' counts as {self.king}"


#: Named value families: the paper's in-distribution rule, its OOD rule and instruction variants.
CARD_VALUE_PRESETS: dict[str, CardValues] = {
    "face10": CardValues(10, 10, 10),
    "face_ood": CardValues(11, 12, 13),
    "all5": CardValues(5, 5, 5),
    "all7": CardValues(7, 7, 7),
}


def card_values(spec: str | CardValues) -> CardValues:
    """Resolve a preset name, a ``"J,Q,K"`` triple such as ``"11,12,13"``, or pass a CardValues through."""
    if isinstance(spec, CardValues):
        return spec
    if spec in CARD_VALUE_PRESETS:
        return CARD_VALUE_PRESETS[spec]
    parts = str(spec).split(",")
    if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
        return CardValues(*(int(p) for p in parts))
    raise ValueError(f"card values {spec!r}; expected one of {sorted(CARD_VALUE_PRESETS)} or 'J,Q,K' ints")


@dataclass(frozen=True)
class Card:
    rank: int
    suit: str

    @property
    def label(self) -> str:
        return rank_label(self.rank)


@dataclass(frozen=True)
class HandConfig:
    """Knobs of hand sampling: card count (4 to 6), target, face values, forcing a face card (the OOD rule)."""

    num_cards: int = 4
    target: int = 24
    values: CardValues = CardValues()
    force_face_card: bool = False
    max_tries: int = 1000

    def __post_init__(self) -> None:
        if not 2 <= self.num_cards <= 6:
            raise ValueError(f"HandConfig.num_cards={self.num_cards}: expected 2..6")
        if self.target < 1:
            raise ValueError(f"HandConfig.target={self.target}: expected a positive int")


@dataclass(frozen=True)
class Hand:
    """A dealt hand with its values under the configured rule and one solution formula."""

    cards: tuple[Card, ...]
    values: tuple[int, ...]
    target: int
    solution: str
    seed: int | None = None

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.cards]

    def content_hash(self) -> str:
        text = "|".join(f"{c.rank}{c.suit[0]}" for c in self.cards) + f"|{self.values}|{self.target}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"cards": self.labels, "suits": [c.suit for c in self.cards], "values": list(self.values),
                "target": self.target, "solution": self.solution, "seed": self.seed}


def sample_hand(cfg: HandConfig, seed: int) -> Hand:
    """Deal a solvable hand as a pure function of ``(cfg, seed)`` (cards drawn without replacement)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected a non-negative int")
    rng = random.Random(seed)
    deck = [Card(rank, suit) for suit in SUITS for rank in range(1, 14)]
    for _ in range(cfg.max_tries):
        cards = rng.sample(deck, cfg.num_cards)
        if cfg.force_face_card and not any(c.rank > 10 for c in cards):
            continue
        values = tuple(cfg.values.value(c.rank) for c in cards)
        formula = solve(values, cfg.target)
        if formula is not None:
            return Hand(tuple(cards), values, cfg.target, formula, seed)
    raise RuntimeError(f"sample_hand: no solvable hand in max_tries={cfg.max_tries} for {cfg} (seed={seed})")
