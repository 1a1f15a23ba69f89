"""gymnasium environment ``mmsft/Sokoban-v0``.

Observation: a dict with ``text`` (symbol grid, default symbols ``# _ O X √ P S``) and/or ``image`` (HxWx3 uint8
sprites), chosen by ``obs_mode`` in ``{"text", "image", "both"}``. Actions: Discrete(4) = Up, Down, Left, Right;
a blocked move is a no-op with ``info["action_is_effective"] = False``. Levels are pure functions of the reset seed
(``reset(seed=s)`` always yields the level generated from ``s``), so training and evaluation seed ranges can be kept
disjoint by the task layer. Info keys follow the shared conventions: ``success``, ``action_is_valid``,
``action_is_effective``, ``level_id``, ``optimal_len``, ``level_seed``, ``boxes_on_target``.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.sokoban.core import RewardConfig, SokobanCore, cached_level, optimal_length, reward_config
from envs.sokoban.generator import GeneratorConfig
from envs.sokoban.level import (BOX, BOX_ON_TARGET, FLOOR, PLAYER, PLAYER_ON_TARGET, TARGET, Level,
                                 codes_from_masks)
from envs.sokoban.render import DEFAULT_CELL_PX, DEFAULT_SYMBOLS, render_image, render_text, validate_symbols

OBS_MODES = ("text", "image", "both")


def check_obs_mode(obs_mode: str) -> str:
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode={obs_mode!r}; expected one of {OBS_MODES}")
    return obs_mode


def observation_space(dim: tuple[int, int], obs_mode: str, symbols: Sequence[str], cell_px: int) -> spaces.Dict:
    """The Dict observation space for a room size, obs_mode, symbol set and cell size."""
    h, w = dim
    parts: dict[str, spaces.Space] = {}
    if obs_mode in ("text", "both"):
        longest = max(len(s) for s in symbols)
        charset = "".join(sorted(set("".join(symbols)) | {"\n"}))
        parts["text"] = spaces.Text(min_length=1, max_length=h * (w + 1) * longest, charset=charset)
    if obs_mode in ("image", "both"):
        parts["image"] = spaces.Box(0, 255, (h * cell_px, w * cell_px, 3), dtype=np.uint8)
    return spaces.Dict(parts)


def apply_settings(target: Any, dim: Sequence[int], num_boxes: int, obs_mode: str, max_steps: int,
                   reward: str | RewardConfig, symbols: Sequence[str], cell_px: int, min_pushes: int,
                   max_pushes: int | None, compute_optimal: bool) -> None:
    """Validate the settings shared by :class:`SokobanEnv` and the batched env and set them on ``target``."""
    if len(tuple(dim)) != 2:
        raise ValueError(f"dim={dim!r}: expected (height, width)")
    if max_steps < 1:
        raise ValueError(f"max_steps={max_steps}: expected >= 1")
    target.generator = GeneratorConfig(dim=(int(dim[0]), int(dim[1])), num_boxes=int(num_boxes),
                                       min_pushes=min_pushes, max_pushes=max_pushes)
    target.obs_mode = check_obs_mode(obs_mode)
    target.max_steps = int(max_steps)
    target.rewards = reward_config(reward)
    target.symbols = validate_symbols(symbols)
    target.cell_px = int(cell_px)
    target.compute_optimal = compute_optimal


class SokobanEnv(gym.Env):
    """Single Sokoban environment; see the module docstring for the observation/action contract."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}

    def __init__(self, dim: Sequence[int] = (6, 6), num_boxes: int = 1, obs_mode: str = "text",
                 max_steps: int = 120, reward: str | RewardConfig = "gym_sokoban",
                 symbols: Sequence[str] = DEFAULT_SYMBOLS, cell_px: int = DEFAULT_CELL_PX, min_pushes: int = 1,
                 max_pushes: int | None = None, compute_optimal: bool = True, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; expected None or one of {self.metadata['render_modes']}")
        apply_settings(self, dim, num_boxes, obs_mode, max_steps, reward, symbols, cell_px, min_pushes, max_pushes,
                       compute_optimal)
        self.render_mode = render_mode
        self.observation_space = observation_space(self.generator.dim, self.obs_mode, self.symbols, self.cell_px)
        self.action_space = spaces.Discrete(4)
        self._core: SokobanCore | None = None
        self._steps = 0
        self._level_seed: int | None = None
        self._level_id = ""
        self._optimal_len: int | None = None
        self._static_chars: list[str] = []

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"level", "level_seed"}
        if unknown:
            raise ValueError(f"reset options {sorted(unknown)} are not understood; expected 'level' or 'level_seed'")
        if "level" in options:
            level = options["level"]
            level = Level.from_dict(level) if isinstance(level, dict) else level
            if not isinstance(level, Level):
                raise TypeError(f"options['level'] must be a Level or a level dict, got {type(level).__name__}")
            if (level.height, level.width) != self.generator.dim:
                raise ValueError(f"options['level'] has dims {(level.height, level.width)}, env dim is "
                                 f"{self.generator.dim}")
            self._level_seed = level.seed
        else:
            if "level_seed" in options:
                level_seed = int(options["level_seed"])
            elif seed is not None:
                level_seed = int(seed)
            else:
                level_seed = int(self.np_random.integers(0, 2**31 - 1))
            level = cached_level(self.generator, level_seed)
            self._level_seed = level_seed
        self._core = SokobanCore(level, self.rewards)
        static = codes_from_masks(level.height, level.width, level.walls, level.targets, 0, level.player)
        static[level.player // level.width, level.player % level.width] = (
            TARGET if (level.targets >> level.player) & 1 else FLOOR)
        cells: list[str] = []
        for r, row in enumerate(static.tolist()):
            cells.extend(self.symbols[c] for c in row)
            if r < level.height - 1:
                cells.append("\n")
        self._static_chars = cells
        self._level_id = level.content_hash()
        self._optimal_len = optimal_length(level) if self.compute_optimal else None
        self._steps = 0
        return self._observation(), self._info(effective=True)

    def step(self, action):
        if self._core is None:
            raise RuntimeError("SokobanEnv.step called before reset")
        a = int(action)
        if a != action or not 0 <= a < 4:
            raise ValueError(f"action={action!r}; expected an int in 0..3 (Up, Down, Left, Right)")
        reward, solved, moved = self._core.step(a)
        self._steps += 1
        truncated = (not solved) and self._steps >= self.max_steps
        return self._observation(), float(reward), bool(solved), bool(truncated), self._info(effective=moved)

    def render(self):
        if self._core is None:
            raise RuntimeError("SokobanEnv.render called before reset")
        if self.render_mode == "ansi":
            return self.text()
        if self.render_mode == "rgb_array":
            return self.image()
        return None

    # ------------------------------------------------------------------ helpers
    @property
    def level(self) -> Level:
        """The level of the current episode (its start state)."""
        if self._core is None:
            raise RuntimeError("SokobanEnv has no level before reset")
        return self._core.level

    def state(self) -> Level:
        """The current state as a Level."""
        if self._core is None:
            raise RuntimeError("SokobanEnv has no state before reset")
        return self._core.snapshot()

    def codes(self) -> np.ndarray:
        """The current state as an (H, W) array of gym-sokoban codes."""
        core = self._core
        if core is None:
            raise RuntimeError("SokobanEnv has no state before reset")
        lv = core.level
        return codes_from_masks(lv.height, lv.width, lv.walls, lv.targets, core.boxes, core.player)

    def text(self) -> str:
        return render_text(self.codes(), self.symbols)

    def image(self) -> np.ndarray:
        return render_image(self.codes(), self.cell_px)

    def _fast_text(self) -> str:
        """Text observation straight from the bitmasks: static symbols cached per episode, boxes and player
        written over a copy (equal to ``render_text(self.codes(), symbols)``)."""
        core = self._core
        assert core is not None
        w1 = core.level.width + 1
        chars = self._static_chars.copy()
        sym = self.symbols
        boxes, targets = core.boxes, core.targets
        while boxes:
            low = boxes & -boxes
            boxes ^= low
            b = low.bit_length() - 1
            chars[b + b // (w1 - 1)] = sym[BOX_ON_TARGET] if targets & low else sym[BOX]
        p = core.player
        chars[p + p // (w1 - 1)] = sym[PLAYER_ON_TARGET] if (targets >> p) & 1 else sym[PLAYER]
        return "".join(chars)

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        if self.obs_mode in ("text", "both"):
            obs["text"] = self._fast_text()
        if self.obs_mode in ("image", "both"):
            obs["image"] = render_image(self.codes(), self.cell_px)
        return obs

    def _info(self, effective: bool) -> dict[str, Any]:
        core = self._core
        assert core is not None
        return {
            "success": core.on_target == core.num_boxes,
            "action_is_valid": True,
            "action_is_effective": effective,
            "level_id": self._level_id,
            "level_seed": self._level_seed,
            "optimal_len": self._optimal_len,
            "boxes_on_target": core.on_target,
            "steps": self._steps,
        }
