"""SFT dataset builders for Sokoban and General Points (JSONL + PNG, see :mod:`tasks.puzzles.rows`).

Targets come from our own solvers (move-optimal A* for Sokoban, the exhaustive exact solver for General Points),
so every example is verified by construction. Prompt variants are sampled per example from the configured
diversity axes and family set ("Debunk the Myth of SFT Generalization", arXiv 2510.00237); the target and the
stored verifier answer are rewritten with the same variant. Everything is a pure function of the build config.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.general_points.cards import HandConfig, sample_hand
from envs.general_points.render import render_cards
from envs.sokoban.core import cached_level, optimal_length
from envs.sokoban.generator import GeneratorConfig
from envs.sokoban.level import Level, apply_actions
from envs.sokoban.render import render_image, render_text
from envs.sokoban.solver import Solution, solve_astar
from tasks.puzzles import gp_task, sokoban_task
from tasks.puzzles.diversity import AXES, FAMILY_SETS, sample_variant
from tasks.puzzles.rows import SPLITS, RowWriter, check_out_dir, write_manifest
from tasks.puzzles.seeds import hand_key, sokoban_key, split_seed, variant_key

#: Sokoban evaluation suites of debunk/RAGEN: name -> (dim, boxes); 6x6-1 is in-distribution.
SOKOBAN_SUITES: dict[str, tuple[tuple[int, int], int]] = {
    "6x6-1": ((6, 6), 1), "6x6-2": ((6, 6), 2), "8x8-2": ((8, 8), 2),
    "10x10-1": ((10, 10), 1), "10x10-2": ((10, 10), 2), "10x10-3": ((10, 10), 3),
}
#: General Points suites: name -> (cards, forced face card, pinned card family or None).
GP_SUITES: dict[str, tuple[int, bool, str | None]] = {
    "4cards": (4, False, None), "ood-face": (4, True, "face_ood"), "5cards": (5, False, None),
    "6cards": (6, False, None),
}


@dataclass
class BuildConfig:
    """Options shared by the builders (the CLI maps its flags onto this)."""

    world: str
    out: Path
    split: str = "train"
    format: str = "step"
    num: int = 100
    seed: int = 0
    modality: str = "text"
    axes: tuple[str, ...] = ()
    families: str = "train"
    pin: dict[str, str] = field(default_factory=dict)
    suite: str | None = None
    dim: tuple[int, int] | None = None
    num_boxes: int | None = None
    cell_px: int = 48
    num_cards: int | None = None
    target: int = 24
    force_face_card: bool | None = None
    card_width: int = 120
    prompt_style: str = "ragen"

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split={self.split!r}; expected one of {SPLITS}")
        if self.num < 1:
            raise ValueError(f"num={self.num}: expected >= 1")
        if self.families not in FAMILY_SETS:
            raise ValueError(f"families={self.families!r}; expected one of {FAMILY_SETS}")
        bad = [a for a in self.axes if a not in AXES]
        if bad:
            raise ValueError(f"prompt diversity axes {bad}; expected some of {AXES}")
        if self.prompt_style not in sokoban_task.PROMPT_STYLES:
            raise ValueError(f"prompt_style={self.prompt_style!r}; expected one of {sokoban_task.PROMPT_STYLES}")
        if self.world != "sokoban" and self.prompt_style != "ragen":
            raise ValueError(f"prompt_style={self.prompt_style!r} exists for sokoban only (world {self.world!r})")
        check_out_dir(self.out, self.world)


def _meta(cfg: BuildConfig, **extra: Any) -> dict[str, Any]:
    return {"world": cfg.world, "split": cfg.split, "format": cfg.format, "modality": cfg.modality,
            "families": cfg.families, **extra}


def _sokoban_dims(cfg: BuildConfig) -> tuple[str, tuple[int, int], int]:
    if cfg.suite is not None and cfg.suite not in SOKOBAN_SUITES:
        raise ValueError(f"sokoban suite={cfg.suite!r}; expected one of {sorted(SOKOBAN_SUITES)}")
    dim, boxes = SOKOBAN_SUITES[cfg.suite or "6x6-1"]
    dim = tuple(cfg.dim) if cfg.dim is not None else dim
    boxes = cfg.num_boxes if cfg.num_boxes is not None else boxes
    return f"{dim[0]}x{dim[1]}-{boxes}", dim, boxes


def _suffix_solution(plan: Solution, done: int, level: Level) -> Solution:
    """The optimal plan from the state after ``done`` moves (a suffix of an optimal plan is optimal)."""
    boxes, player, pushes_done = level.boxes, level.player, 0
    for a in plan.actions[:done]:
        state = Level(level.height, level.width, level.walls, level.targets, boxes, player)
        new_boxes, player, _ = apply_actions(state, [a])
        pushes_done += new_boxes != boxes
        boxes = new_boxes
    return Solution(plan.actions[done:], plan.pushes[pushes_done:], 0)


def build_sokoban(cfg: BuildConfig) -> dict[str, Any]:
    """Write a Sokoban split; returns build info (rows, levels, file)."""
    if cfg.format not in sokoban_task.FORMATS:
        raise ValueError(f"sokoban format={cfg.format!r}; expected one of {sokoban_task.FORMATS}")
    suite, dim, boxes = _sokoban_dims(cfg)
    gen = GeneratorConfig(dim=dim, num_boxes=boxes)
    levels = 0
    with RowWriter(cfg.out, cfg.split) as writer:
        index = 0
        while writer.count < cfg.num:
            level_seed = split_seed(cfg.split, cfg.seed, index, lambda s: sokoban_key(cached_level(gen, s)))
            index += 1
            level = cached_level(gen, level_seed)
            plan = solve_astar(level)
            levels += 1
            states = [(0, level)] if cfg.format == "plan" else []
            if cfg.format != "plan":
                boxes_now, player = level.boxes, level.player
                for k in range(len(plan.actions)):
                    states.append((k, Level(level.height, level.width, level.walls, level.targets, boxes_now,
                                            player)))
                    boxes_now, player, _ = apply_actions(states[-1][1], [plan.actions[k]])
            for step, state in states:
                if writer.count >= cfg.num:
                    break
                variant = sample_variant(random.Random(variant_key(cfg.split, cfg.seed, index, step)), cfg.axes,
                                         cfg.families, cfg.pin)
                text_obs = render_text(state.codes(), variant.symbols)
                prompt = sokoban_task.build_prompt(state, variant, cfg.format, cfg.modality, text_obs,
                                                   cfg.prompt_style)
                remaining = Solution(plan.actions[step:], (), 0)
                if cfg.format == "plan":
                    target = sokoban_task.plan_target(list(plan.actions), variant)
                    answer = sokoban_task.make_answer(state, variant, "plan", len(plan.actions), None)
                else:
                    first = sokoban_task.optimal_first_actions(state, optimal_length)
                    if cfg.format == "step":
                        target = sokoban_task.step_target(plan.actions[step], variant)
                    else:
                        remaining = _suffix_solution(plan, step, level)
                        target = sokoban_task.cot_target(state, remaining, variant)
                    answer = sokoban_task.make_answer(state, variant, cfg.format, len(remaining.actions), first)
                image = render_image(state.codes(), cfg.cell_px) if cfg.modality != "text" else None
                meta = _meta(cfg, suite=suite, prompt_style=cfg.prompt_style, dim=list(dim), num_boxes=boxes,
                             level_seed=level_seed,
                             level_id=level.content_hash(), step=step, optimal_len=len(plan.actions),
                             variant=variant.describe())
                writer.add(f"sokoban-{cfg.split}-{writer.count:06d}", prompt, target, answer, meta, image)
        info = {"rows": writer.count, "levels": levels, "images": writer.images, "file": writer.path.name,
                "suite": suite, "format": cfg.format, "seed": cfg.seed, "axes": list(cfg.axes),
                "families": cfg.families, "pin": cfg.pin, "modality": cfg.modality, "prompt_style": cfg.prompt_style}
    write_manifest(cfg.out, cfg.world, cfg.split, info)
    return info


def build_general_points(cfg: BuildConfig) -> dict[str, Any]:
    """Write a General Points split; returns build info."""
    if cfg.format not in gp_task.FORMATS:
        raise ValueError(f"general-points format={cfg.format!r}; expected one of {gp_task.FORMATS}")
    if cfg.suite is not None and cfg.suite not in GP_SUITES:
        raise ValueError(f"general-points suite={cfg.suite!r}; expected one of {sorted(GP_SUITES)}")
    n_cards, force, pinned = GP_SUITES[cfg.suite or "4cards"]
    n_cards = cfg.num_cards if cfg.num_cards is not None else n_cards
    force = cfg.force_face_card if cfg.force_face_card is not None else force
    pin = dict(cfg.pin)
    if pinned is not None:
        pin.setdefault("cards", pinned)
    suite = cfg.suite or f"{n_cards}cards"
    with RowWriter(cfg.out, cfg.split) as writer:
        for index in range(cfg.num):
            variant = sample_variant(random.Random(variant_key(cfg.split, cfg.seed, index)), cfg.axes,
                                     cfg.families, pin)
            hand_cfg = HandConfig(num_cards=n_cards, target=cfg.target, values=variant.cards_verify,
                                  force_face_card=force)
            hand_seed = split_seed(cfg.split, cfg.seed, index, lambda s: hand_key(sample_hand(hand_cfg, s)))
            hand = sample_hand(hand_cfg, hand_seed)
            prompt = gp_task.build_prompt(hand, variant, cfg.format, cfg.modality)
            target = gp_task.target_text(hand, cfg.format)
            if target is None:
                raise RuntimeError(f"sampled hand {hand.labels} has no solution; sample_hand should prevent this")
            image = render_cards(hand.cards, cfg.card_width) if cfg.modality != "text" else None
            meta = _meta(cfg, suite=suite, num_cards=n_cards, hand_seed=hand_seed, level_id=hand.content_hash(),
                         variant=variant.describe())
            writer.add(f"general-points-{cfg.split}-{index:06d}", prompt, target, gp_task.make_answer(hand), meta,
                       image)
        info = {"rows": writer.count, "images": writer.images, "file": writer.path.name, "suite": suite,
                "format": cfg.format, "seed": cfg.seed, "axes": list(cfg.axes), "families": cfg.families,
                "pin": pin, "modality": cfg.modality}
    write_manifest(cfg.out, cfg.world, cfg.split, info)
    return info
