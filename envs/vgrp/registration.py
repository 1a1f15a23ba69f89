"""gymnasium registration of the 20 VGRP-Bench puzzles (Ren et al., arXiv 2503.23064) as ``mmsft/VGRP-<puzzle>-v0``.

Entry points are strings, so importing this module imports no puzzle code; ``gymnasium.make`` loads it.
"""

from __future__ import annotations

import gymnasium

PUZZLE_IDS: tuple[str, ...] = (
    "aquarium", "battleships", "binairo", "colored_sudoku", "field_explore", "futoshiki", "hitori", "jigsaw_sudoku",
    "kakurasu", "kakuro", "killer_sudoku", "light_up", "nonogram", "odd_even_sudoku", "renzoku", "skyscraper",
    "star_battle", "sudoku", "thermometers", "trees_and_tents",
)


def env_id(puzzle: str) -> str:
    return f"mmsft/VGRP-{puzzle}-v0"


for _name in PUZZLE_IDS:
    if env_id(_name) not in gymnasium.registry:
        gymnasium.register(id=env_id(_name), entry_point="envs.vgrp.env:VGRPEnv", kwargs={"puzzle": _name})
