"""Multi-turn bridge between a text policy and the batched Sokoban env (RL rollouts and interactive evaluation).

Each turn: :meth:`SokobanTextTask.prompts` renders one prompt per slot from the current state; the policy answers;
:meth:`SokobanTextTask.step_text` parses every answer with the example's vocabulary (up to ``max_actions_per_turn``
actions joined by ``||``, as in RAGEN; one action per turn as in verl-agent when it is 1), applies them to the
numpy batch, and returns the summed env reward plus ``format_penalty`` for unparsable answers. Unparsable answers
are no-ops, never silent: they are counted in :attr:`SokobanTextTask.stats` and flagged in the per-slot info
(``action_is_valid``), following "Debunk the Myth of SFT Generalization" (arXiv 2510.00237).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from envs.sokoban.level import Level, mask_of
from envs.sokoban.vector import SokobanVecEnv
from tasks.puzzles import sokoban_task
from tasks.puzzles.diversity import Variant
from tasks.puzzles.parsing import ParseStats, parse_actions


class SokobanTextTask:
    """Text turns over a :class:`SokobanVecEnv`; one prompt :class:`Variant` per slot (defaults to base)."""

    def __init__(self, vec: SokobanVecEnv, variants: Sequence[Variant] | None = None, modality: str = "text",
                 max_actions_per_turn: int = 5, format_penalty: float = -0.1) -> None:
        if max_actions_per_turn < 1:
            raise ValueError(f"max_actions_per_turn={max_actions_per_turn}: expected >= 1")
        if variants is not None and len(variants) != vec.num_envs:
            raise ValueError(f"got {len(variants)} variants for {vec.num_envs} envs")
        self.vec = vec
        self.variants = list(variants) if variants is not None else [Variant()] * vec.num_envs
        self.modality = modality
        self.max_actions = int(max_actions_per_turn)
        self.format_penalty = float(format_penalty)
        self.stats = ParseStats()
        self.done = np.zeros(vec.num_envs, dtype=bool)

    def reset(self, seeds: Sequence[int], group_size: int = 1) -> list[str]:
        """Reset the batch (``group_size`` > 1 makes GRPO groups of identical levels) and return the prompts."""
        if group_size > 1:
            self.vec.reset_groups(seeds, group_size)
        else:
            self.vec.reset(seeds)
        self.done[:] = False
        return self.prompts()

    def _state(self, i: int) -> Level:
        vec = self.vec
        start = vec.levels[i]
        assert start is not None
        boxes = mask_of(np.flatnonzero(vec.boxes[i]).tolist())
        return Level(start.height, start.width, start.walls, start.targets, boxes, int(vec.player[i]))

    def prompts(self) -> list[str]:
        """One prompt per slot for the current states (format ``plan`` when several actions per turn)."""
        fmt = "plan" if self.max_actions > 1 else "step"
        codes = self.vec.codes()
        out = []
        for i, variant in enumerate(self.variants):
            text = sokoban_task.render_text(codes[i], variant.symbols) if self.modality != "image" else None
            prompt = sokoban_task.build_prompt(self._state(i), variant, fmt, self.modality, text)
            if self.max_actions > 1:
                prompt += f"\nYou may give at most {self.max_actions} actions this turn; you will see the new state."
            out.append(prompt)
        return out

    def images(self) -> np.ndarray:
        """``(B, H, W, 3)`` frames for VLM prompts."""
        return self.vec.render_images()

    def step_text(self, responses: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Apply one text turn per slot; returns ``(rewards, done, infos)``. Finished slots ignore their text."""
        b = self.vec.num_envs
        if len(responses) != b:
            raise ValueError(f"got {len(responses)} responses for {b} envs")
        plans: list[list[int]] = []
        infos: list[dict[str, Any]] = []
        rewards = np.zeros(b)
        for i, text in enumerate(responses):
            if self.done[i]:
                plans.append([])
                infos.append({"action_is_valid": True, "parse_outcome": "finished"})
                continue
            parsed = self.stats.add(parse_actions(text, self.variants[i].actions_verify, self.max_actions))
            plan = list(parsed.value)[: self.max_actions]
            if not parsed.ok:
                rewards[i] += self.format_penalty
                plan = [] if parsed.outcome != "too_many_actions" else plan
            plans.append(plan)
            infos.append({"action_is_valid": parsed.ok, "parse_outcome": parsed.outcome, "actions": plan})
        longest = max((len(p) for p in plans), default=0)
        for j in range(longest):
            active = np.array([len(p) > j and not self.done[i] for i, p in enumerate(plans)])
            actions = np.array([p[j] if len(p) > j else 0 for p in plans], dtype=np.int64)
            _, r, terminated, truncated, _ = self.vec.step(actions, active)
            rewards += r
            self.done |= active & (terminated | truncated)
        success = self.vec.on_target == self.vec.num_boxes
        for i, info in enumerate(infos):
            info["success"] = bool(success[i])
        return rewards, self.done.copy(), infos
