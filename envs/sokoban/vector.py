"""Numpy-vectorised batched Sokoban: B rooms of one size stepped with a handful of array operations.

For RL (GRPO/GiGPO groups as in verl-agent and "Debunk the Myth of SFT Generalization", arXiv 2510.00237) the
batch can be reset as groups of identical copies of one level (:meth:`SokobanVecEnv.reset_groups`). Semantics
match a list of :class:`envs.sokoban.env.SokobanEnv` step for step (same levels from the same seeds, same rewards,
terminated/truncated flags and observations); there is no auto-reset, the caller resets finished slots with
:meth:`reset_at` or starts a new batch.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from envs.sokoban.core import RewardConfig, cached_level, optimal_length
from envs.sokoban.env import apply_settings
from envs.sokoban.level import BOX, BOX_ON_TARGET, FLOOR, PLAYER, TARGET, WALL, Level
from envs.sokoban.render import DEFAULT_CELL_PX, DEFAULT_SYMBOLS, render_text_batch, sprite_atlas

# (static code, has box) -> code; static codes are WALL, FLOOR or TARGET
_BOX_LUT = np.array([[WALL, WALL], [FLOOR, BOX], [TARGET, BOX_ON_TARGET]], dtype=np.uint8)


def _unpack(mask: int, n: int) -> np.ndarray:
    raw = np.frombuffer(mask.to_bytes((n + 7) // 8, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)


class SokobanVecEnv:
    """B Sokoban rooms of the same size with numpy state ``(B, H*W)``."""

    def __init__(self, num_envs: int, dim: Sequence[int] = (6, 6), num_boxes: int = 1, obs_mode: str = "text",
                 max_steps: int = 120, reward: str | RewardConfig = "gym_sokoban",
                 symbols: Sequence[str] = DEFAULT_SYMBOLS, cell_px: int = DEFAULT_CELL_PX, min_pushes: int = 1,
                 max_pushes: int | None = None, compute_optimal: bool = True) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}: expected >= 1")
        self.num_envs = int(num_envs)
        apply_settings(self, dim, num_boxes, obs_mode, max_steps, reward, symbols, cell_px, min_pushes, max_pushes,
                       compute_optimal)
        h, w = self.generator.dim
        self.height, self.width, self.n_cells = h, w, h * w
        b, n = self.num_envs, self.n_cells
        self.offsets = np.array([-w, w, -1, 1], dtype=np.int64)
        self.static = np.zeros((b, n), dtype=np.uint8)  # WALL / FLOOR / TARGET
        self.walls = np.zeros((b, n), dtype=bool)
        self.targets = np.zeros((b, n), dtype=bool)
        self.boxes = np.zeros((b, n), dtype=bool)
        self.player = np.zeros(b, dtype=np.int64)
        self.on_target = np.zeros(b, dtype=np.int64)
        self.num_boxes = np.zeros(b, dtype=np.int64)
        self.steps = np.zeros(b, dtype=np.int64)
        self.levels: list[Level | None] = [None] * b
        self.level_seeds: list[int | None] = [None] * b
        self.level_ids: list[str] = [""] * b
        self.optimal_lens = np.full(b, -1, dtype=np.int64)
        self._rows = np.arange(b)
        self._ready = False

    # ------------------------------------------------------------------ resets
    def _load(self, i: int, level: Level, seed: int | None) -> None:
        n = self.n_cells
        walls, targets, boxes = _unpack(level.walls, n), _unpack(level.targets, n), _unpack(level.boxes, n)
        self.walls[i] = walls
        self.targets[i] = targets
        self.boxes[i] = boxes
        self.static[i] = np.where(walls, WALL, np.where(targets, TARGET, FLOOR))
        self.player[i] = level.player
        self.on_target[i] = int((boxes & targets).sum())
        self.num_boxes[i] = int(boxes.sum())
        self.steps[i] = 0
        self.levels[i] = level
        self.level_seeds[i] = seed
        self.level_ids[i] = level.content_hash()
        self.optimal_lens[i] = optimal_length(level) if self.compute_optimal else -1

    def reset_at(self, i: int, seed: int | None = None, level: Level | None = None) -> None:
        """Reset slot ``i`` to the level of ``seed`` or to an explicit ``level``."""
        if not 0 <= i < self.num_envs:
            raise IndexError(f"slot {i} is outside 0..{self.num_envs - 1}")
        if (seed is None) == (level is None):
            raise ValueError("reset_at needs exactly one of seed= or level=")
        if level is not None:
            if (level.height, level.width) != self.generator.dim:
                raise ValueError(f"level dims {(level.height, level.width)} != env dim {self.generator.dim}")
            self._load(i, level, level.seed)
        else:
            self._load(i, cached_level(self.generator, int(seed)), int(seed))

    def reset(self, seeds: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset every slot; ``seeds`` has one level seed per slot."""
        seeds = [int(s) for s in seeds]
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset got {len(seeds)} seeds for num_envs={self.num_envs}")
        for i, s in enumerate(seeds):
            self.reset_at(i, seed=s)
        self._ready = True
        return self.observations(), self._infos(np.ones(self.num_envs, dtype=bool))

    def reset_groups(self, seeds: Sequence[int], group_size: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset as ``len(seeds)`` groups of ``group_size`` identical copies (GRPO groups); slots are contiguous."""
        if group_size < 1 or len(seeds) * group_size != self.num_envs:
            raise ValueError(f"reset_groups: {len(seeds)} seeds x group_size={group_size} must equal "
                             f"num_envs={self.num_envs}")
        return self.reset([s for s in seeds for _ in range(group_size)])

    # ------------------------------------------------------------------ stepping
    def step(self, actions: Sequence[int] | np.ndarray, active: np.ndarray | None = None):
        """Step every slot; returns ``(obs, rewards, terminated, truncated, infos)`` as arrays/lists of length B.

        ``active`` (bool, B) leaves the other slots untouched: no move, reward 0, step counter unchanged (used to
        apply multi-action turns of different lengths).
        """
        if not self._ready:
            raise RuntimeError("SokobanVecEnv.step called before reset")
        act = np.asarray(actions)
        if act.shape != (self.num_envs,) or not np.issubdtype(act.dtype, np.integer):
            raise ValueError(f"actions must be {self.num_envs} ints, got shape {act.shape} dtype {act.dtype}")
        if act.size and (act.min() < 0 or act.max() > 3):
            raise ValueError(f"actions must be in 0..3 (Up, Down, Left, Right), got range {act.min()}..{act.max()}")
        if active is None:
            active = np.ones(self.num_envs, dtype=bool)
        active = np.asarray(active, dtype=bool)
        if active.shape != (self.num_envs,):
            raise ValueError(f"active must be a bool mask of shape ({self.num_envs},), got {active.shape}")
        rows = self._rows
        off = self.offsets[act]
        nxt = self.player + off
        beyond = np.clip(nxt + off, 0, self.n_cells - 1)
        wall1 = self.walls[rows, nxt]
        box1 = self.boxes[rows, nxt]
        blocked2 = self.walls[rows, beyond] | self.boxes[rows, beyond]
        push = box1 & ~blocked2 & ~wall1 & active
        moved = ~wall1 & (~box1 | push) & active
        if push.any():
            pr = rows[push]
            self.boxes[pr, nxt[push]] = False
            self.boxes[pr, beyond[push]] = True
        delta = push * (self.targets[rows, beyond].astype(np.int64) - self.targets[rows, nxt])
        self.on_target += delta
        self.player = np.where(moved, nxt, self.player)
        self.steps += active
        rw = self.rewards
        solved = self.on_target == self.num_boxes
        rewards = (np.full(self.num_envs, rw.step) + rw.box_on_target * (delta > 0) + rw.box_off_target * (delta < 0)
                   + rw.solved * solved) * active
        truncated = ~solved & (self.steps >= self.max_steps)
        return self.observations(), rewards, solved, truncated, self._infos(moved)

    # ------------------------------------------------------------------ observations
    def codes(self) -> np.ndarray:
        """``(B, H, W)`` gym-sokoban codes of the current states."""
        codes = _BOX_LUT[self.static, self.boxes.view(np.uint8)]
        pcode = PLAYER + self.targets[self._rows, self.player]
        codes[self._rows, self.player] = pcode
        return codes.reshape(self.num_envs, self.height, self.width)

    def render_text(self, codes: np.ndarray | None = None) -> list[str]:
        return render_text_batch(self.codes() if codes is None else codes, self.symbols)

    def render_images(self, codes: np.ndarray | None = None) -> np.ndarray:
        """``(B, H*px, W*px, 3)`` uint8 frames from the cached sprite atlas."""
        codes = self.codes() if codes is None else codes
        px = self.cell_px
        tiles = sprite_atlas(px)[codes]  # (B, H, W, px, px, 3)
        return tiles.transpose(0, 1, 3, 2, 4, 5).reshape(self.num_envs, self.height * px, self.width * px, 3)

    def observations(self) -> dict[str, Any]:
        codes = self.codes()
        obs: dict[str, Any] = {}
        if self.obs_mode in ("text", "both"):
            obs["text"] = self.render_text(codes)
        if self.obs_mode in ("image", "both"):
            obs["image"] = self.render_images(codes)
        return obs

    def _infos(self, effective: np.ndarray) -> dict[str, Any]:
        return {
            "success": self.on_target == self.num_boxes,
            "action_is_valid": np.ones(self.num_envs, dtype=bool),
            "action_is_effective": np.asarray(effective, dtype=bool),
            "level_id": list(self.level_ids),
            "level_seed": list(self.level_seeds),
            "optimal_len": self.optimal_lens.copy() if self.compute_optimal else None,
            "boxes_on_target": self.on_target.copy(),
            "steps": self.steps.copy(),
        }
