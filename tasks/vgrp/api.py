"""Public API of the VGRP-Bench tasks (Ren et al., arXiv 2503.23064), called by the ``mmsft data build`` and
``mmsft eval-puzzles`` commands.

- ``PUZZLES``: the 20 puzzle names (``aquarium`` ... ``trees_and_tents``)
- ``build_dataset(puzzle, out_dir, num, seed, size=None, difficulty=None, fmt="solution"|"reasoning",
  with_image=True, grid_style="lists"|"rows"|"spaced") -> dict``: writes ``out_dir/data.jsonl`` +
  ``out_dir/images/*.png`` and returns counts
- ``evaluate_predictions(predictions_path, dataset_path=None) -> dict``: the evaluation report
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envs.vgrp.registry import PUZZLE_NAMES
from tasks.vgrp import dataset as _dataset
from tasks.vgrp import evaluate as _evaluate

PUZZLES: tuple[str, ...] = PUZZLE_NAMES


def build_dataset(puzzle: str, out_dir: str | Path, num: int, seed: int, size: int | None = None,
                  difficulty: str | None = None, fmt: str = "solution", with_image: bool = True,
                  grid_style: str = "lists") -> dict[str, Any]:
    """Build an S-SFT (``fmt="solution"``) or R-SFT (``fmt="reasoning"``) set for one puzzle; returns counts.
    ``grid_style="rows"`` / ``"spaced"`` write each grid row as one string (about half the tokens;
    ``tasks.vgrp.prompts``)."""
    return _dataset.build_dataset(puzzle, out_dir, num, seed, size=size, difficulty=difficulty, fmt=fmt,
                                  with_image=with_image, grid_style=grid_style)


def evaluate_predictions(predictions_path: str | Path, dataset_path: str | Path | None = None) -> dict[str, Any]:
    """Score predictions (JSONL rows with ``id`` and ``prediction``/``response``/...) against a built dataset."""
    return _evaluate.evaluate_predictions(predictions_path, dataset_path)


__all__ = ["PUZZLES", "build_dataset", "evaluate_predictions"]
