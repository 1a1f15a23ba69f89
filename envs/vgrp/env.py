"""gymnasium environment for one VGRP-Bench puzzle (Ren et al., arXiv 2503.23064).

Single-turn by default: ``reset`` draws a puzzle from the seed and shows it (``text`` and/or ``image``); ``step``
takes the model's response (a string in VGRP's JSON format, a parsed dict, or an answer grid), verifies it strictly
and ends the episode. ``max_attempts > 1`` allows retries on failure.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from envs.vgrp.answer import parse_response, perception_correct, to_grid
from envs.vgrp.core import Instance, verify
from envs.vgrp.registry import get_puzzle
from envs.vgrp.render import render_image, render_text

CHARSET = frozenset(string.printable)
OBS_MODES = ("text", "image", "both")
REWARDS = ("strict", "solution_only", "dense")


class VGRPEnv(gymnasium.Env):
    """``gymnasium.make("mmsft/VGRP-sudoku-v0", size=4, difficulty="easy", obs_mode="both")``.

    Rewards: ``strict`` = 1 iff the answer is correct and, when an image is shown, the perceived board is correct
    too (VGRP's answer score); ``solution_only`` ignores perception; ``dense`` = 0.5 perception + 0.5 answer.
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 1}

    def __init__(self, puzzle: str, size: int | None = None, difficulty: str | None = None,
                 n_clues: int | None = None, obs_mode: str = "both", image_px: int = 800, reward: str = "strict",
                 max_attempts: int = 1, render_mode: str | None = None, unique: bool = False):
        self.puzzle = get_puzzle(puzzle)
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode={obs_mode!r}: expected one of {OBS_MODES}")
        if reward not in REWARDS:
            raise ValueError(f"reward={reward!r}: expected one of {REWARDS}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: expected one of {self.metadata['render_modes']} or None")
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts!r}: expected an int >= 1")
        if not isinstance(image_px, int) or image_px < 64:
            raise ValueError(f"image_px={image_px!r}: expected an int >= 64")
        self.size = self.puzzle.size_for(size, difficulty)
        self.difficulty = difficulty
        self.n_clues = n_clues
        self.unique = bool(unique)
        self.obs_mode, self.image_px, self.reward_mode = obs_mode, image_px, reward
        self.max_attempts, self.render_mode = max_attempts, render_mode
        obs: dict[str, spaces.Space] = {}
        if obs_mode in ("text", "both"):
            obs["text"] = spaces.Text(max_length=32_768, min_length=1, charset=CHARSET)
        if obs_mode in ("image", "both"):
            obs["image"] = spaces.Box(0, 255, (image_px, image_px, 3), np.uint8)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Text(max_length=8_192, min_length=0, charset=CHARSET)
        self.instance: Instance | None = None
        self.grid = None
        self.attempts = 0

    # -------------------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "instance" in options:
            inst = options["instance"]
            inst = inst if isinstance(inst, Instance) else Instance.from_dict(inst)
            if inst.puzzle != self.puzzle.name:
                raise ValueError(f"options['instance'].puzzle={inst.puzzle!r}: expected {self.puzzle.name!r}")
        else:
            level_seed = int(options.get("level_seed", self.np_random.integers(0, 2**31 - 1)))
            inst = self.puzzle.generate(self.size, level_seed, self.n_clues, self.difficulty, self.unique)
        self.instance = inst
        self.grid = [row[:] for row in inst.board]
        self.attempts = 0
        return self._obs(), {"level_id": f"{inst.puzzle}/{inst.size}/{inst.seed}", "instance": inst.to_dict()}

    def step(self, action: Any):
        if self.instance is None:
            raise RuntimeError("call reset() before step()")
        inst = self.instance
        self.attempts += 1
        if isinstance(action, (list, tuple)):
            perceived, answer, status = None, to_grid(action), "grid"
        else:
            parsed = parse_response(action)
            perceived, answer, status = parsed.perception, parsed.answer, parsed.status
        verdict = verify(self.puzzle, answer, inst) if answer is not None else None
        solved = bool(verdict and verdict.ok)
        percept = perception_correct(self.puzzle, perceived, inst)
        needs_perception = self.obs_mode != "text" and status != "grid"
        if self.reward_mode == "strict":
            reward = float(solved and (percept or not needs_perception))
        elif self.reward_mode == "solution_only":
            reward = float(solved)
        else:
            reward = 0.5 * float(percept) + 0.5 * float(solved)
        success = solved and (percept or not needs_perception)
        if answer is not None and verdict is not None and "shape" not in verdict.violations:
            self.grid = [[str(x) for x in row] for row in answer]
        terminated = success or self.attempts >= self.max_attempts
        info = {
            "success": success, "answer_correct": solved, "perception_correct": percept,
            "parse_status": status, "action_is_valid": answer is not None,
            "violations": [] if verdict is None else verdict.violations, "attempts": self.attempts,
        }
        return self._obs(), reward, terminated, False, info

    def render(self):
        if self.instance is None or self.render_mode is None:
            return None
        if self.render_mode == "ansi":
            return render_text(self.puzzle, self.instance, self.grid)
        return render_image(self.puzzle, self.instance, self.grid, self.image_px)

    # -------------------------------------------------------------------------------------------------------
    def _obs(self) -> dict[str, Any]:
        assert self.instance is not None
        obs: dict[str, Any] = {}
        if "text" in self.observation_space.spaces:
            obs["text"] = self.puzzle.rules + "\n" + render_text(self.puzzle, self.instance, self.grid)
        if "image" in self.observation_space.spaces:
            obs["image"] = render_image(self.puzzle, self.instance, self.grid, self.image_px)
        return obs

