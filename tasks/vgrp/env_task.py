"""Environment tasks for the VGRP-Bench puzzles (Ren et al., arXiv 2503.23064): ``vgrp`` (puzzle named in
``task_args``) and ``vgrp-<puzzle>`` for each of the 20 puzzles.

The first prompt is the dataset's (:func:`tasks.vgrp.prompts.build_prompt`, so an S-SFT / R-SFT warm-up is in
distribution); the answer is VGRP's JSON (``perception`` and ``answer`` grids), verified strictly by the env.

* ``env.mode=single_turn``: one answer per puzzle.
* ``env.mode=multi_turn``: up to ``env.max_turns`` attempts; after a wrong answer the next turn names the violated
  rules (or the parse problem) and asks again. The episode ends at the first correct answer.

An answer with no readable grid is passed to the env (reward 0, no progress) and counted by its parse status
(``no_grid``, ``perception_only``, ...). ``task_args``: ``puzzle`` (for ``vgrp``), ``size``, ``difficulty``
(easy), ``n_clues``, ``reward`` (strict | solution_only | dense), ``image_px`` (800), ``format``
(solution | reasoning), ``unique`` (false), ``grid_style`` (lists | rows: the reply layout the prompt asks for,
as in :func:`tasks.vgrp.prompts.build_prompt`).
"""

from __future__ import annotations

from typing import Any

from envs.vgrp.answer import parse_response
from envs.vgrp.env import VGRPEnv
from envs.vgrp.registry import PUZZLE_NAMES
from mmsft.rollout.envs import BatchedEnv, GymBatch
from mmsft.rollout.tasks import ENV_TASKS, EnvTask, GeneratedTurn, TurnAction, TurnPrompt
from tasks.vgrp.prompts import build_prompt

_DEFAULTS: dict[str, Any] = {"puzzle": None, "size": None, "difficulty": "easy", "n_clues": None, "reward": "strict",
                             "image_px": 800, "format": "solution", "unique": False,
                             "grid_style": "lists"}


class VGRPTask(EnvTask):
    """One VGRP puzzle, single- or multi-turn; see the module docstring."""

    def __init__(self, cfg: Any, adapter: Any, puzzle: str | None = None) -> None:
        super().__init__(cfg, adapter)
        unknown = sorted(set(cfg.task_args) - set(_DEFAULTS))
        if unknown:
            raise ValueError(f"env.task_args {unknown} are not understood by task 'vgrp'; valid keys: "
                             f"{sorted(_DEFAULTS)}")
        self.args = {**_DEFAULTS, **cfg.task_args}
        self.puzzle = puzzle or self.args["puzzle"]
        if not self.puzzle:
            raise ValueError(f"task 'vgrp' needs env.task_args.puzzle: one of {', '.join(PUZZLE_NAMES)}")
        self.name = f"vgrp-{self.puzzle}"
        self.attempts = cfg.max_turns if cfg.mode == "multi_turn" else 1

    def make_env(self, num_envs: int) -> BatchedEnv:
        a = self.args
        return GymBatch(lambda: VGRPEnv(self.puzzle, size=a["size"], difficulty=a["difficulty"], n_clues=a["n_clues"],
                                        obs_mode=self.cfg.observation, image_px=int(a["image_px"]),
                                        reward=a["reward"], max_attempts=self.attempts, unique=bool(a["unique"])),
                        num_envs, reset_kwargs=lambda seed: {"seed": seed, "options": {"level_seed": seed}})

    def observe(self, env: BatchedEnv, slot: int, observation: dict[str, Any], info: dict[str, Any],
                turn: int) -> TurnPrompt:
        images = [observation["image"]] if self.cfg.observation != "text" else []
        if turn == 0:
            game = env.envs[slot]  # type: ignore[attr-defined]
            text = build_prompt(game.puzzle, game.instance, self.args["format"], with_image=bool(images),
                                grid_style=self.args["grid_style"])
            return TurnPrompt(text, images)
        violations = info.get("violations") or []
        problem = ", ".join(map(str, violations[:5])) if violations else f"parse status {info.get('parse_status')}"
        text = (f"That answer is not a valid solution ({problem}). Try again: reply with JSON only, in the same "
                "format.")
        if self.cfg.observation != "image" and "text" in observation:
            text += "\nThe current game state:\n" + observation["text"]
        return TurnPrompt(text, images)

    def act(self, slot: int, output: GeneratedTurn, info: dict[str, Any]) -> TurnAction:
        parsed = parse_response(output.text)
        outcome = "ok" if parsed.answer is not None else parsed.status
        return TurnAction([output.text], outcome, summary=parsed.status)


def _factory(puzzle: str | None):
    def make(cfg: Any, adapter: Any) -> VGRPTask:
        return VGRPTask(cfg, adapter, puzzle)

    make.__qualname__ = f"make_vgrp_{puzzle or 'task'}"
    return make


ENV_TASKS.add("vgrp", _factory(None))
for _name in PUZZLE_NAMES:
    ENV_TASKS.add(f"vgrp-{_name}", _factory(_name))
