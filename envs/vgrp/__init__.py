"""The 20 VGRP-Bench puzzles (Ren et al., "VGRP-Bench: Visual Grid Reasoning Puzzle Benchmark for Large
Vision-Language Models", arXiv 2503.23064) as generators, strict verifiers, renderers, tracing solvers and
gymnasium environments (``mmsft/VGRP-<puzzle>-v0``).

Public names: ``get_puzzle``, ``PUZZLE_NAMES``, ``Instance``, ``verify``, ``solve``, ``render_image``,
``render_text``, ``parse_response``, ``perception_correct``.
"""

from envs.vgrp.answer import parse_response, perception_correct
from envs.vgrp.core import Instance, Verdict, verify
from envs.vgrp.registry import PUZZLE_NAMES, REGISTRY, canonical_name, get_puzzle
from envs.vgrp.render import render_image, render_text
from envs.vgrp.solver import solve

__all__ = [
    "Instance", "Verdict", "verify", "PUZZLE_NAMES", "REGISTRY", "canonical_name", "get_puzzle", "render_image",
    "render_text", "solve", "parse_response", "perception_correct",
]
