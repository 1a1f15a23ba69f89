"""Registry of the 20 VGRP-Bench puzzles (Ren et al., arXiv 2503.23064), keyed by our snake_case names.

``get_puzzle`` also accepts VGRP-Bench's own spellings (``starbattle``, ``Trees-and-Tents``, ``fieldexplore``).
"""

from __future__ import annotations

import re

from envs.vgrp.core import Puzzle
from envs.vgrp.puzzles.deduction import FieldExplore, LightUp
from envs.vgrp.puzzles.filling import Aquarium, Thermometers
from envs.vgrp.puzzles.latin import Futoshiki, Kakuro, Renzoku, Skyscraper
from envs.vgrp.puzzles.placement import Battleships, StarBattle, TreesAndTents
from envs.vgrp.puzzles.shading import Binairo, Hitori, Kakurasu, Nonogram
from envs.vgrp.puzzles.sudokus import ColoredSudoku, JigsawSudoku, KillerSudoku, OddEvenSudoku, Sudoku

_CLASSES = (
    Aquarium, Battleships, Binairo, ColoredSudoku, FieldExplore, Futoshiki, Hitori, JigsawSudoku, Kakurasu, Kakuro,
    KillerSudoku, LightUp, Nonogram, OddEvenSudoku, Renzoku, Skyscraper, StarBattle, Sudoku, Thermometers,
    TreesAndTents,
)
REGISTRY: dict[str, Puzzle] = {cls.name: cls() for cls in _CLASSES}
PUZZLE_NAMES: tuple[str, ...] = tuple(REGISTRY)
_ALIASES = {re.sub(r"[^a-z0-9]", "", name): name for name in REGISTRY}


def canonical_name(name: str) -> str:
    """Our name for a puzzle given any VGRP spelling; raises ValueError naming the valid choices."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    if key not in _ALIASES:
        raise ValueError(f"puzzle={name!r}: expected one of {', '.join(PUZZLE_NAMES)}")
    return _ALIASES[key]


def get_puzzle(name: str) -> Puzzle:
    return REGISTRY[canonical_name(name)]
