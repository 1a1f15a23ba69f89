"""gymnasium environment ``mmsft/GeneralPoints-v0`` (single turn, arXiv 2501.17161; GP-L in arXiv 2510.00237).

``reset`` deals a solvable hand (a pure function of the seed); the observation holds ``text`` (card labels and
target) and/or ``image`` (the cards drawn side by side) per ``obs_mode``. The action is the model's answer as text:
a JSON object ``{"cards": [...], "number": [...], "formula": "..."}`` or a bare formula. ``step`` scores it with the
paper's reward table (see :mod:`envs.general_points.reward`) and always terminates the episode. Any text is scored
(never an exception); text over :data:`envs.verdict.MAX_RESPONSE_CHARS` gets outcome ``too_long`` with the
``illegal_formula`` reward.
"""

from __future__ import annotations

import json
import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.general_points.cards import CardValues, Hand, HandConfig, card_values, sample_hand
from envs.general_points.render import DEFAULT_CARD_WIDTH, render_cards, render_hand_text
from envs.general_points.reward import DEFAULT_REWARDS, score_answer, too_long_verdict
from envs.verdict import Verdict, too_long

OBS_MODES = ("text", "image", "both")
ACTION_CHARSET = string.printable + "×÷·"


def parse_action(action: str) -> dict[str, Any]:
    """Strict reading of an action string: a JSON object with a ``formula`` key, or a bare formula."""
    text = str(action).strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # bad JSON, a 4,301+-digit number, nesting deeper than the stack
            return {"formula": text}
        if isinstance(data, dict):
            return data
    return {"formula": text}


class GeneralPointsEnv(gym.Env):
    """Single-turn 24-game environment with configurable card count, target and face-card values."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 1}

    def __init__(self, num_cards: int = 4, target: int = 24, face_values: str | CardValues = "face10",
                 force_face_card: bool = False, obs_mode: str = "text", card_width: int = DEFAULT_CARD_WIDTH,
                 rewards: dict[str, float] | None = None, render_mode: str | None = None) -> None:
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode={obs_mode!r}; expected one of {OBS_MODES}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; expected None or one of {self.metadata['render_modes']}")
        self.values = card_values(face_values)
        self.config = HandConfig(num_cards=num_cards, target=target, values=self.values,
                                 force_face_card=force_face_card)
        self.obs_mode = obs_mode
        self.card_width = int(card_width)
        self.rewards = dict(DEFAULT_REWARDS if rewards is None else rewards)
        self.render_mode = render_mode
        parts: dict[str, spaces.Space] = {}
        if obs_mode in ("text", "both"):
            parts["text"] = spaces.Text(min_length=1, max_length=512, charset=string.printable)
        if obs_mode in ("image", "both"):
            probe = render_cards(sample_hand(self.config, 0).cards, self.card_width)
            parts["image"] = spaces.Box(0, 255, probe.shape, dtype=np.uint8)
        self.observation_space = spaces.Dict(parts)
        self.action_space = spaces.Text(min_length=0, max_length=1024, charset=ACTION_CHARSET)
        self._hand: Hand | None = None

    @property
    def hand(self) -> Hand:
        if self._hand is None:
            raise RuntimeError("GeneralPointsEnv has no hand before reset")
        return self._hand

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"hand_seed"}
        if unknown:
            raise ValueError(f"reset options {sorted(unknown)} are not understood; expected 'hand_seed'")
        if "hand_seed" in options:
            hand_seed = int(options["hand_seed"])
        elif seed is not None:
            hand_seed = int(seed)
        else:
            hand_seed = int(self.np_random.integers(0, 2**31 - 1))
        self._hand = sample_hand(self.config, hand_seed)
        return self._observation(), self._info(None)

    def step(self, action: str):
        hand = self.hand
        if not isinstance(action, str):
            raise TypeError(f"action must be the answer text (str), got {type(action).__name__}")
        if too_long(action):
            verdict = too_long_verdict(len(action), self.rewards)
        else:
            verdict = score_answer(hand, parse_action(action), self.rewards)
        return self._observation(), verdict.reward, True, False, self._info(verdict)

    def render(self):
        if self.render_mode == "ansi":
            return render_hand_text(self.hand, self.values)
        if self.render_mode == "rgb_array":
            return render_cards(self.hand.cards, self.card_width)
        return None

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        if self.obs_mode in ("text", "both"):
            obs["text"] = render_hand_text(self.hand)
        if self.obs_mode in ("image", "both"):
            obs["image"] = render_cards(self.hand.cards, self.card_width)
        return obs

    def _info(self, verdict: Verdict | None) -> dict[str, Any]:
        hand = self.hand
        info: dict[str, Any] = {"level_id": hand.content_hash(), "hand_seed": hand.seed, "values": list(hand.values),
                                "target": hand.target, "solution": hand.solution, "success": False,
                                "action_is_valid": True}
        if verdict is not None:
            info.update(success=verdict.success, outcome=verdict.outcome,
                        action_is_valid=verdict.outcome not in ("illegal_formula", "no_solution", "too_long"))
        return info
