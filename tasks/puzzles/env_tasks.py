"""Environment tasks ``sokoban`` and ``general_points`` for the agent loop (``task: sokoban`` in a recipe).

Sokoban (RAGEN / "Debunk the Myth of SFT Generalization", arXiv 2504.20073, 2510.00237): the prompts are exactly the
ones ``mmsft data build sokoban`` writes (so a model warmed up on that data is in distribution), and level seeds
follow the same split ranges (train level k is the level of example k; held-out levels come from ``val``/``test``).

* ``env.mode=multi_turn``: one move per turn (``step`` prompt; ``task_args.max_actions_per_turn`` > 1 allows
  several moves joined by ``||`` with the ``plan`` prompt); the next turn shows the new board.
* ``env.mode=single_turn``: the whole plan in one answer (``plan`` prompt), executed move by move, then the
  episode ends.

An unparsable answer does not move the player and costs ``format_penalty`` (default −0.1); its outcome
(``empty``, ``unknown_action``, ``too_many_actions``) is counted by the agent loop.

General Points (arXiv 2501.17161): single-turn; the answer is scored by the env's reward table. An answer the
tolerant parser cannot read is passed to the env as is (it scores as an illegal formula) and counted.

``task_args`` — sokoban: ``dim`` [H, W] (default [6, 6]), ``num_boxes`` (1), ``max_actions_per_turn`` (1 in
multi-turn mode, 64 in single-turn mode), ``format_penalty`` (−0.1), ``reward`` (gym_sokoban), ``max_steps`` (env step
limit, default 100), ``prompt_style`` (ragen | compact, :data:`tasks.puzzles.sokoban_task.PROMPT_STYLES`),
``prompt_diversity`` (none | all | actions,symbols: a prompt variant per level, drawn from the level seed),
``families`` (train | heldout | fake), ``action_family`` / ``symbol_family`` (pin one family, e.g. emoji), ``format``
(step | cot: the per-move prompt asks for an answer only, or ``<think>`` then the answer; multi-turn, one move per
turn); general_points: ``num_cards`` (4), ``target`` (24), ``face_values`` (face10),
``force_face_card`` (false), ``format`` (plan | cot), ``card_width`` (120); the prompt states the J/Q/K values the
env scores with (``face_values``).
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np

from envs.general_points.cards import HandConfig, card_values, sample_hand
from envs.general_points.env import GeneralPointsEnv
from envs.sokoban.core import cached_level
from envs.sokoban.generator import GeneratorConfig
from envs.sokoban.level import Level, mask_of
from envs.sokoban.render import render_text
from envs.sokoban.vector import SokobanVecEnv
from mmsft.rollout.envs import BatchedEnv, GymBatch, SokobanBatch
from mmsft.rollout.tasks import ENV_TASKS, EnvTask, GeneratedTurn, TurnAction, TurnPrompt
from tasks.puzzles import gp_task, sokoban_task
from tasks.puzzles.diversity import Variant, parse_axes, sample_variant
from tasks.puzzles.parsing import parse_actions, parse_gp_answer
from tasks.puzzles.seeds import hand_key, sokoban_key, split_seed


def _take(args: dict[str, Any], defaults: dict[str, Any], task: str) -> dict[str, Any]:
    unknown = sorted(set(args) - set(defaults))
    if unknown:
        raise ValueError(f"env.task_args {unknown} are not understood by task {task!r}; valid keys: "
                         f"{sorted(defaults)}")
    return {**defaults, **args}


class SokobanTask(EnvTask):
    """Sokoban over :class:`SokobanVecEnv`; see the module docstring."""

    name = "sokoban"

    def __init__(self, cfg: Any, adapter: Any) -> None:
        super().__init__(cfg, adapter)
        multi = cfg.mode == "multi_turn"
        args = _take(cfg.task_args, {"dim": [6, 6], "num_boxes": 1, "max_actions_per_turn": 1 if multi else 64,
                                     "format_penalty": -0.1, "reward": "gym_sokoban", "max_steps": 100,
                                     "prompt_style": "ragen", "prompt_diversity": "none", "families": "train",
                                     "action_family": None, "symbol_family": None, "format": None}, self.name)
        self.dim = tuple(int(x) for x in args["dim"])
        self.num_boxes = int(args["num_boxes"])
        self.max_actions = int(args["max_actions_per_turn"])
        if self.max_actions < 1:
            raise ValueError(f"env.task_args.max_actions_per_turn={self.max_actions}: expected >= 1")
        self.format_penalty = float(args["format_penalty"])
        self.reward, self.max_steps = args["reward"], int(args["max_steps"])
        if args["prompt_style"] not in sokoban_task.PROMPT_STYLES:
            raise ValueError(f"env.task_args.prompt_style={args['prompt_style']!r}; expected one of "
                             f"{sokoban_task.PROMPT_STYLES}")
        self.style = args["prompt_style"]
        self.axes = parse_axes(str(args["prompt_diversity"]))
        self.families = str(args["families"])
        self.pin = {axis: str(value) for axis, value in (("actions", args["action_family"]),
                                                         ("symbols", args["symbol_family"])) if value is not None}
        # fail at start-up on a bad family / pin, not in the first episode
        self.variant = sample_variant(random.Random(0), self.axes, self.families, self.pin)
        self._variants: list[Variant] = []
        self.fmt = "step" if multi and self.max_actions == 1 else "plan"
        if args["format"] is not None:
            if args["format"] not in ("step", "cot") or not (multi and self.max_actions == 1):
                raise ValueError(f"env.task_args.format={args['format']!r}: expected step or cot, and only in "
                                 "multi_turn mode with max_actions_per_turn 1 (whole plans use the plan prompt)")
            self.fmt = args["format"]
        self.modality = cfg.observation

    def make_env(self, num_envs: int) -> BatchedEnv:
        return SokobanBatch(SokobanVecEnv(num_envs, dim=self.dim, num_boxes=self.num_boxes, obs_mode=self.modality,
                                          max_steps=self.max_steps, reward=self.reward, compute_optimal=False))

    def level_seed(self, split: str, index: int) -> int:
        """The build's seed for level ``index`` of ``split`` (content-disjoint splits, tasks/puzzles/seeds.py)."""
        gen = GeneratorConfig(dim=self.dim, num_boxes=self.num_boxes)
        return split_seed(split, self.cfg.seed, index, lambda s: sokoban_key(cached_level(gen, s)))

    def begin_episodes(self, env: BatchedEnv, observations: list[dict[str, Any]], infos: list[dict[str, Any]]) -> None:
        """One prompt variant per slot, a pure function of the level seed (a GRPO group shares it)."""
        seeds = env.vec.level_seeds  # type: ignore[attr-defined]
        self._variants = [self.variant if not self.axes else
                          sample_variant(random.Random(f"env-variant:{seed}"), self.axes, self.families, self.pin)
                          for seed in seeds]

    def _slot_variant(self, slot: int) -> Variant:
        return self._variants[slot] if slot < len(self._variants) else self.variant

    def observe(self, env: BatchedEnv, slot: int, observation: dict[str, Any], info: dict[str, Any],
                turn: int) -> TurnPrompt:
        vec = env.vec  # type: ignore[attr-defined]
        start = vec.levels[slot]
        state = Level(start.height, start.width, start.walls, start.targets,
                      mask_of(np.flatnonzero(vec.boxes[slot]).tolist()), int(vec.player[slot]))
        variant = self._slot_variant(slot)
        text_obs = None
        if self.modality != "image":
            text_obs = render_text(vec.codes()[slot], variant.symbols)
        prompt = sokoban_task.build_prompt(state, variant, self.fmt, self.modality, text_obs, self.style)
        if self.cfg.mode == "multi_turn" and self.max_actions > 1:
            prompt += f"\nYou may give at most {self.max_actions} actions this turn; you will see the new state."
        images = [observation["image"]] if self.modality != "text" else []
        return TurnPrompt(prompt, images)

    def act(self, slot: int, output: GeneratedTurn, info: dict[str, Any]) -> TurnAction:
        names = self._slot_variant(slot).actions_verify
        parsed = parse_actions(output.text, names, self.max_actions)
        if not parsed.ok:
            return TurnAction([], parsed.outcome, self.format_penalty, summary=parsed.detail or None)
        return TurnAction(list(parsed.value), summary=[names[a] for a in parsed.value])

    def frames(self, env: BatchedEnv, observations: list) -> list:
        return list(env.render_frames())  # type: ignore[attr-defined]


class GeneralPointsTask(EnvTask):
    """General Points (the 24 game) over :class:`GeneralPointsEnv`, one answer per episode."""

    name = "general_points"

    def __init__(self, cfg: Any, adapter: Any) -> None:
        super().__init__(cfg, adapter)
        args = _take(cfg.task_args, {"num_cards": 4, "target": 24, "face_values": "face10",
                                     "force_face_card": False, "format": "plan", "card_width": 120}, self.name)
        if args["format"] not in gp_task.FORMATS:
            raise ValueError(f"env.task_args.format={args['format']!r}; expected one of {gp_task.FORMATS}")
        self.args = args
        values = card_values(args["face_values"])  # the prompt states the values the env scores with
        self.variant = Variant(card_family=str(args["face_values"]), cards_shown=values, cards_verify=values)

    def make_env(self, num_envs: int) -> BatchedEnv:
        a = self.args
        return GymBatch(lambda: GeneralPointsEnv(num_cards=a["num_cards"], target=a["target"],
                                                 face_values=a["face_values"], force_face_card=a["force_face_card"],
                                                 obs_mode=self.cfg.observation, card_width=a["card_width"]),
                        num_envs)

    def level_seed(self, split: str, index: int) -> int:
        """The build's seed for hand ``index`` of ``split`` (content-disjoint splits, tasks/puzzles/seeds.py)."""
        a = self.args
        cfg = HandConfig(num_cards=a["num_cards"], target=a["target"], values=card_values(a["face_values"]),
                         force_face_card=a["force_face_card"])
        return split_seed(split, self.cfg.seed, index, lambda s: hand_key(sample_hand(cfg, s)))

    def observe(self, env: BatchedEnv, slot: int, observation: dict[str, Any], info: dict[str, Any],
                turn: int) -> TurnPrompt:
        hand = env.envs[slot].hand  # type: ignore[attr-defined]
        prompt = gp_task.build_prompt(hand, self.variant, self.args["format"], self.cfg.observation)
        images = [observation["image"]] if self.cfg.observation != "text" else []
        return TurnPrompt(prompt, images)

    def act(self, slot: int, output: GeneratedTurn, info: dict[str, Any]) -> TurnAction:
        parsed = parse_gp_answer(output.text)
        if not parsed.ok:  # the env scores it (illegal formula); the outcome is counted
            return TurnAction([output.text], parsed.outcome, end_episode=True, summary=output.text[:200])
        return TurnAction([json.dumps(parsed.value)], end_episode=True, summary=parsed.value)


@ENV_TASKS.register("sokoban")
def make_sokoban(cfg: Any, adapter: Any) -> SokobanTask:
    return SokobanTask(cfg, adapter)


@ENV_TASKS.register("general_points")
def make_general_points(cfg: Any, adapter: Any) -> GeneralPointsTask:
    return GeneralPointsTask(cfg, adapter)
