"""Sokoban as an LLM/VLM task: prompts, SFT targets (step / plan / cot) and the strict verifier.

The prompt follows the RAGEN / "Debunk the Myth of SFT Generalization" (arXiv 2510.00237) Sokoban prompt: role,
symbol legend, rules, the answer vocabulary (with a "where X is Up, ..." line for non-default vocabularies), the
reward table, the current observation, then the request. Targets:

* ``step`` - one (state -> next optimal action) pair, answer only (debunk's answer-only SFT);
* ``plan`` - the whole move-optimal plan joined by ``||`` (RAGEN multi-action turns);
* ``cot``  - a templated reasoning trace (SPA-style ``<observation>`` perception with coordinates, the sub-goal from
  the solver's next push, the walk and the push, and a ``<prediction>`` of the next state) then the next action.

The answer dict stored with each example is all the verifier needs (level rows, vocabulary, optimal first
actions), so evaluation never re-runs the generator.
"""

from __future__ import annotations

from typing import Any

from envs.sokoban.level import Level, action_offsets, apply_actions, bits, solved_after
from envs.sokoban.render import render_text
from envs.sokoban.solver import Solution
from envs.verdict import Verdict
from tasks.puzzles.diversity import BASE_ACTIONS, Variant
from tasks.puzzles.parsing import ParseResult, parse_actions
from tasks.puzzles.sokoban_compact import compact_prompt

FORMATS = ("step", "plan", "cot")
MODALITIES = ("text", "image", "both")
#: Prompt families: ``ragen`` (the papers' prompt, the default) and ``compact`` (:mod:`tasks.puzzles.sokoban_compact`:
#: board plus an object listing, short enough for the tiny offline models to learn the board -> move mapping).
PROMPT_STYLES = ("ragen", "compact")
_LEGEND_NAMES = ("Wall", "Floor", "Target", "Box on Target", "Box", "You", "You on Target")
_IMAGE_LEGEND = ("The image shows the board from above: brick tiles are walls, dark tiles are floor, a red diamond "
                 "outline is a target, a yellow crate with an X is a box, a green crate is a box on a target, and "
                 "the green figure is you.")


def _coord(cell: int, width: int) -> str:
    return f"({cell // width}, {cell % width})"


def _cells(mask: int, width: int) -> str:
    return ", ".join(_coord(c, width) for c in bits(mask)) or "none"


def build_prompt(state: Level, variant: Variant, fmt: str, modality: str, text_obs: str | None,
                 style: str = "ragen") -> str:
    """The user prompt for one state; ``text_obs`` is the symbol grid (required unless modality is image);
    ``style`` is a prompt family of :data:`PROMPT_STYLES`."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}; expected one of {FORMATS}")
    if modality not in MODALITIES:
        raise ValueError(f"modality={modality!r}; expected one of {MODALITIES}")
    if style not in PROMPT_STYLES:
        raise ValueError(f"prompt style={style!r}; expected one of {PROMPT_STYLES}")
    if style == "compact":
        return compact_prompt(state, variant, fmt, modality, text_obs, _IMAGE_LEGEND)
    names = variant.actions_shown
    lines = ["You are a Sokoban solver.", "", "Sokoban Quick Guide", "Goal: Push all boxes onto targets.", ""]
    if modality in ("text", "both"):
        legend = " | ".join(f"{s} {n}" for s, n in zip(variant.symbols, _LEGEND_NAMES))
        lines += ["Symbols:", legend]
    if modality in ("image", "both"):
        lines += [_IMAGE_LEGEND]
    lines += ["", "Rules:", "1. Push boxes (you can't pull them).", "2. Avoid walls.", "",
              "Answers:", " | ".join(f"<answer> {n} </answer>" for n in names)]
    if tuple(names) != BASE_ACTIONS:
        lines.append("where " + ", ".join(f"{n} is {b}" for n, b in zip(names, BASE_ACTIONS)) + ".")
    lines += ["", "Rewards:", "Move: -0.1", "Box on target: +1.0", "All boxes placed: +10.0", ""]
    if modality in ("text", "both"):
        if text_obs is None:
            raise ValueError("build_prompt needs text_obs for modality 'text' or 'both'")
        lines += ["[Current Observation]:", text_obs, ""]
    else:
        lines += ["[Current Observation]: see the image.", ""]
    sep = " || "
    if fmt == "plan":
        lines.append(f"Give the complete sequence of actions that solves the puzzle, separated by '{sep.strip()}'.")
        lines.append("Always output: <answer> [your answer] </answer> with no extra text.")
    elif fmt == "step":
        lines.append("Decide the next action.")
        lines.append("Always output: <answer> [your answer] </answer> with no extra text.")
    else:
        lines.append("Decide the next action.")
        lines.append("Always output: <think> [Your thoughts] </think> <answer> [your answer] </answer> with no "
                     "extra text.")
    return "\n".join(lines)


def plan_target(actions: list[int], variant: Variant) -> str:
    names = variant.actions_verify
    return "<answer>" + " || ".join(names[a] for a in actions) + "</answer>"


def step_target(action: int, variant: Variant) -> str:
    return f"<answer>{variant.actions_verify[action]}</answer>"


def cot_target(state: Level, plan: Solution, variant: Variant) -> str:
    """Templated reasoning for the next action of a move-optimal plan from ``state``."""
    if not plan.actions:
        raise ValueError("cot_target needs a state that is not solved (empty plan)")
    w = state.width
    names = variant.actions_verify
    offsets = action_offsets(w)
    on = bin(state.boxes & state.targets).count("1")
    perception = (f"<observation>Player at {_coord(state.player, w)}. Boxes at {_cells(state.boxes, w)}. "
                  f"Targets at {_cells(state.targets, w)}. Boxes on targets: {on}/{state.num_boxes}.</observation>")
    box_from, box_to = plan.pushes[0]
    push_dir = offsets.index(box_to - box_from)
    first_push = next(k for k, a in enumerate(plan.actions)
                      if apply_actions(state, plan.actions[:k + 1])[0] != state.boxes)
    walk = [names[a] for a in plan.actions[:first_push]]
    subgoal = (f"Sub-goal: push the box at {_coord(box_from, w)} {BASE_ACTIONS[push_dir].lower()} to "
               f"{_coord(box_to, w)}" + (" onto a target." if (state.targets >> box_to) & 1 else "."))
    route = (f"Walk {', '.join(walk)}, then push {names[push_dir]}." if walk
             else f"I am next to the box, so push {names[push_dir]}.")
    first = plan.actions[0]
    boxes, player, _ = apply_actions(state, [first])
    pred = (f"<prediction>After {names[first]}: player at {_coord(player, w)}; boxes at {_cells(boxes, w)}."
            f"</prediction>")
    remaining = f"A shortest solution needs {len(plan.actions)} more moves."
    return f"<think>{perception} {subgoal} {route} {remaining} {pred}</think> <answer>{names[first]}</answer>"


def optimal_first_actions(state: Level, optimal_len) -> list[int]:
    """Every action that starts a move-optimal plan from ``state`` (``optimal_len`` maps a Level to its length)."""
    target = optimal_len(state)
    out = []
    for a in range(4):
        boxes, player, moved = apply_actions(state, [a])
        if not moved:
            continue
        nxt = Level(state.height, state.width, state.walls, state.targets, boxes, player)
        if nxt.is_solved() and target == 1 or (not nxt.is_solved() and optimal_len(nxt) == target - 1):
            out.append(a)
    return out


def make_answer(state: Level, variant: Variant, fmt: str, optimal_len: int,
                optimal_actions: list[int] | None) -> dict[str, Any]:
    """The verifier-ready answer stored with an example."""
    answer: dict[str, Any] = {"world": "sokoban", "format": fmt, "level": {"rows": state.to_ascii()},
                              "actions": list(variant.actions_verify), "optimal_len": optimal_len}
    if fmt in ("step", "cot"):
        answer["optimal_actions"] = list(optimal_actions or [])
    return answer


def verify(answer: dict[str, Any], response: str) -> Verdict:
    """Strict check of a response against a stored answer (step/cot: an optimal next move; plan: solves).

    Total on any response text: unreadable text gets reward 0 and the parser's outcome (see
    :data:`tasks.puzzles.parsing.OUTCOMES`); a malformed *answer* (dataset row) raises, naming the missing key."""
    for key in ("format", "level", "actions"):
        if key not in answer:
            raise KeyError(f"sokoban answer is missing key {key!r}; got keys {sorted(answer)}")
    fmt = answer["format"]
    if fmt not in FORMATS:
        raise ValueError(f"sokoban answer format={fmt!r}; expected one of {FORMATS}")
    level = Level.from_dict(answer["level"])
    if fmt == "plan":
        parsed = parse_actions(response, answer["actions"])
        if not parsed.ok:
            return _unparsed(parsed)
        solved_at = solved_after(level, parsed.value)
        success = solved_at is not None
        return Verdict(outcome="ok", reward=float(success), success=success, details={
            "moves": len(parsed.value), "solved_at": solved_at, "optimal_len": answer.get("optimal_len")})
    if "optimal_actions" not in answer:
        raise KeyError("sokoban step/cot answer is missing key 'optimal_actions'")
    parsed = parse_actions(response, answer["actions"], max_actions=1)
    if not parsed.ok:
        return _unparsed(parsed)
    action = parsed.value[0]
    success = action in answer["optimal_actions"]
    return Verdict(outcome="ok", reward=float(success), success=success, details={"action": action})


def _unparsed(parsed: ParseResult) -> Verdict:
    """Reward 0 with the parser's counted outcome (``too_long``, ``empty``, ``unknown_action``, ...)."""
    return Verdict(outcome=parsed.outcome, reward=0.0, success=False, parse_ok=False, details={"detail": parsed.detail})
