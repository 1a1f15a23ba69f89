"""Prompt diversity as a first-class transform ("Debunk the Myth of SFT Generalization", arXiv 2510.00237).

Standard SFT on one fixed instruction learns the training vocabulary and ignores the prompt (the "frozen prompt"
effect). Sampling the action vocabulary, the symbol legend and the card values per example, and rewriting the
target and the verifier consistently, removes that shortcut. Each axis has *train* families and *held-out*
families for evaluation; ``fake`` variants announce a held-out vocabulary in the prompt while the verifier keeps
the base semantics, which detects models that ignore the instructions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from envs.general_points.cards import CARD_VALUE_PRESETS, CardValues
from envs.sokoban.render import DEFAULT_SYMBOLS

BASE_ACTIONS = ("Up", "Down", "Left", "Right")

#: Fixed action vocabularies (Up, Down, Left, Right), as in debunk's ``ActionFormat`` enum.
ACTION_FAMILIES: dict[str, tuple[str, str, str, str]] = {
    "base": BASE_ACTIONS,
    "cardinal": ("North", "South", "West", "East"),
    "emoji": ("⬆️", "⬇️", "⬅️", "➡️"),
    "numerical": ("1", "2", "3", "4"),
    "alphabetical": ("A", "B", "C", "D"),
    "random": ("*", "&", "1", "M"),
}
#: Random-word mappings draw 4 distinct words per example; the pools of train and held-out words are disjoint.
TRAIN_WORDS = (
    "apple banana cherry grape lemon mango melon peach pear plum tiger zebra otter panda koala eagle falcon heron "
    "raven robin red blue green amber coral ivory olive navy teal violet river ocean forest desert canyon island "
    "meadow valley glacier harbor piano violin guitar trumpet drum flute cello harp banjo organ"
).split()
HELDOUT_WORDS = (
    "bread cheese pasta rice soup salad honey butter pepper ginger walrus bison moose lynx gecko cobra llama camel "
    "badger beaver comet nebula quasar pulsar meteor planet orbit galaxy lunar solar marble granite quartz basalt "
    "onyx opal topaz jade ruby pearl"
).split()

#: Symbol legends indexed by code: wall, floor, target, box on target, box, player, player on target.
SYMBOL_FAMILIES: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_SYMBOLS,
    "ragen_alt": ("W", ".", "G", "C", "B", "A", "@"),
    "xsb": ("#", "-", ".", "*", "$", "@", "+"),
    "digits": ("0", "1", "2", "3", "4", "5", "6"),
}
TRAIN_SYMBOL_POOL = tuple("#%&=+-~^:;!?<>|/\\oxXOQRSTUVZ")
HELDOUT_SYMBOL_POOL = tuple("abcdefghijklmnpqrstuvwyz")

CARD_FAMILIES: dict[str, CardValues] = dict(CARD_VALUE_PRESETS)

FAMILY_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "actions": {"train": ("base", "words"), "heldout": ("cardinal", "emoji", "numerical", "alphabetical", "random",
                                                        "heldout_words")},
    "symbols": {"train": ("default", "random_symbols"), "heldout": ("ragen_alt", "xsb", "digits",
                                                                    "heldout_symbols")},
    "cards": {"train": ("face10", "random_values"), "heldout": ("face_ood", "all5", "all7")},
}
AXES = tuple(FAMILY_SPLITS)
FAMILY_SETS = ("train", "heldout", "fake")


@dataclass(frozen=True)
class Variant:
    """One example's prompt variant. ``*_shown`` is what the prompt announces, ``*_verify`` what the verifier uses
    (they differ only for fake variants)."""

    action_family: str = "base"
    actions_shown: tuple[str, ...] = BASE_ACTIONS
    actions_verify: tuple[str, ...] = BASE_ACTIONS
    symbol_family: str = "default"
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    card_family: str = "face10"
    cards_shown: CardValues = CardValues()
    cards_verify: CardValues = CardValues()
    fake: bool = False

    def describe(self) -> dict:
        return {"action_family": self.action_family, "actions_shown": list(self.actions_shown),
                "actions_verify": list(self.actions_verify), "symbol_family": self.symbol_family,
                "symbols": list(self.symbols), "card_family": self.card_family,
                "cards_shown": [self.cards_shown.jack, self.cards_shown.queen, self.cards_shown.king],
                "cards_verify": [self.cards_verify.jack, self.cards_verify.queen, self.cards_verify.king],
                "fake": self.fake}


def parse_axes(spec: str) -> tuple[str, ...]:
    """``"none"``, ``"all"`` or a comma list of axes (actions, symbols, cards)."""
    spec = spec.strip().lower()
    if spec in ("", "none"):
        return ()
    if spec == "all":
        return AXES
    axes = tuple(a.strip() for a in spec.split(",") if a.strip())
    bad = [a for a in axes if a not in AXES]
    if bad:
        raise ValueError(f"prompt diversity axes {bad} are unknown; expected 'none', 'all' or a comma list of {AXES}")
    return axes


def _actions(family: str, rng: random.Random) -> tuple[str, ...]:
    if family == "words":
        return tuple(w.capitalize() for w in rng.sample(TRAIN_WORDS, 4))
    if family == "heldout_words":
        return tuple(w.capitalize() for w in rng.sample(HELDOUT_WORDS, 4))
    if family not in ACTION_FAMILIES:
        raise ValueError(f"action family {family!r}; expected one of {sorted(ACTION_FAMILIES) + ['words', 'heldout_words']}")
    return ACTION_FAMILIES[family]


def _symbols(family: str, rng: random.Random) -> tuple[str, ...]:
    if family == "random_symbols":
        return tuple(rng.sample(TRAIN_SYMBOL_POOL, 7))
    if family == "heldout_symbols":
        return tuple(rng.sample(HELDOUT_SYMBOL_POOL, 7))
    if family not in SYMBOL_FAMILIES:
        raise ValueError(f"symbol family {family!r}; expected one of "
                         f"{sorted(SYMBOL_FAMILIES) + ['random_symbols', 'heldout_symbols']}")
    return SYMBOL_FAMILIES[family]


def _cards(family: str, rng: random.Random) -> CardValues:
    if family == "random_values":
        while True:
            values = CardValues(rng.randint(1, 10), rng.randint(1, 10), rng.randint(1, 10))
            if values not in CARD_FAMILIES.values() or values == CARD_FAMILIES["face10"]:
                return values
    if family not in CARD_FAMILIES:
        raise ValueError(f"card family {family!r}; expected one of {sorted(CARD_FAMILIES) + ['random_values']}")
    return CARD_FAMILIES[family]


def sample_variant(rng: random.Random, axes: tuple[str, ...] = (), families: str = "train",
                   pin: dict[str, str] | None = None) -> Variant:
    """Sample a variant: each axis in ``axes`` draws a family from ``families`` (train/heldout/fake); other axes
    keep the defaults; ``pin`` fixes a family per axis (``{"actions": "emoji"}``)."""
    if families not in FAMILY_SETS:
        raise ValueError(f"families={families!r}; expected one of {FAMILY_SETS}")
    pin = dict(pin or {})
    bad = [k for k in pin if k not in AXES]
    if bad:
        raise ValueError(f"pinned axes {bad} are unknown; expected {AXES}")
    pool_name = "train" if families == "train" else "heldout"
    chosen = {}
    for axis in AXES:
        if axis in pin:
            chosen[axis] = pin[axis]
        elif axis in axes:
            pool = FAMILY_SPLITS[axis][pool_name]
            chosen[axis] = pool[rng.randrange(len(pool))]
        else:
            chosen[axis] = FAMILY_SPLITS[axis]["train"][0]
    fake = families == "fake"
    shown_actions = _actions(chosen["actions"], rng)
    shown_cards = _cards(chosen["cards"], rng)
    return Variant(
        action_family=chosen["actions"], actions_shown=shown_actions,
        actions_verify=BASE_ACTIONS if fake else shown_actions,
        symbol_family=chosen["symbols"], symbols=_symbols(chosen["symbols"], rng),
        card_family=chosen["cards"], cards_shown=shown_cards,
        cards_verify=CARD_FAMILIES["face10"] if fake else shown_cards, fake=fake,
    )
