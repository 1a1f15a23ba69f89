"""The Sokoban transition function and reward presets, shared by the single and the batched environment.

Reward presets keep gym-sokoban's constants for comparability with RAGEN, verl-agent and the "Debunk the Myth of
SFT Generalization" (arXiv 2510.00237) experiments: -0.1 per step, +1 box onto a target, -1 box off a target, +10
when every box is on a target (given on every step that ends solved, as gym-sokoban does).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from envs.sokoban.generator import GeneratorConfig, generate_level
from envs.sokoban.level import Level, action_offsets
from envs.sokoban.solver import Unsolvable, solve_astar


@dataclass(frozen=True)
class RewardConfig:
    """Per-step reward terms."""

    step: float = -0.1
    box_on_target: float = 1.0
    box_off_target: float = -1.0
    solved: float = 10.0


REWARD_PRESETS: dict[str, RewardConfig] = {
    "gym_sokoban": RewardConfig(),
    "sparse": RewardConfig(step=0.0, box_on_target=0.0, box_off_target=0.0, solved=1.0),
}


def reward_config(reward: str | RewardConfig) -> RewardConfig:
    """Resolve a preset name or pass a :class:`RewardConfig` through."""
    if isinstance(reward, RewardConfig):
        return reward
    if reward not in REWARD_PRESETS:
        raise ValueError(f"reward={reward!r}; expected one of {sorted(REWARD_PRESETS)} or a RewardConfig")
    return REWARD_PRESETS[reward]


@lru_cache(maxsize=8192)
def cached_level(cfg: GeneratorConfig, seed: int) -> Level:
    """Memoised :func:`generate_level` (levels are pure functions of ``(cfg, seed)``)."""
    return generate_level(cfg, seed)


@lru_cache(maxsize=8192)
def optimal_length(level: Level) -> int:
    """Move-optimal solution length (memoised); -1 when the solver budget runs out."""
    try:
        return len(solve_astar(level))
    except Unsolvable:
        return -1


class SokobanCore:
    """Mutable Sokoban state over bitmasks with the step function; about a microsecond per step in CPython."""

    __slots__ = ("level", "walls", "targets", "boxes", "player", "offsets", "on_target", "num_boxes", "rewards")

    def __init__(self, level: Level, rewards: RewardConfig) -> None:
        self.level = level
        self.walls = level.walls
        self.targets = level.targets
        self.boxes = level.boxes
        self.player = level.player
        self.offsets = action_offsets(level.width)
        self.num_boxes = level.num_boxes
        self.on_target = bin(level.boxes & level.targets).count("1")
        self.rewards = rewards

    def step(self, action: int) -> tuple[float, bool, bool]:
        """Apply action 0..3; returns ``(reward, solved, moved)``. Blocked moves leave the state unchanged."""
        off = self.offsets[action]
        nxt = self.player + off
        rw = self.rewards
        reward = rw.step
        moved = False
        if not (self.walls >> nxt) & 1:
            boxes = self.boxes
            if (boxes >> nxt) & 1:
                beyond = nxt + off
                if not ((self.walls | boxes) >> beyond) & 1:
                    self.boxes = boxes ^ (1 << nxt) ^ (1 << beyond)
                    self.player = nxt
                    moved = True
                    delta = ((self.targets >> beyond) & 1) - ((self.targets >> nxt) & 1)
                    if delta:
                        self.on_target += delta
                        reward += rw.box_on_target if delta > 0 else rw.box_off_target
            else:
                self.player = nxt
                moved = True
        solved = self.on_target == self.num_boxes
        if solved:
            reward += rw.solved
        return reward, solved, moved

    def snapshot(self) -> Level:
        """The current state as a :class:`Level` (no known solution)."""
        lv = self.level
        return Level(lv.height, lv.width, lv.walls, lv.targets, self.boxes, self.player)
