"""The ``compact`` Sokoban prompt family: a short instruction, the board and an object listing.

Why it exists. The RAGEN / "Debunk the Myth of SFT Generalization" (arXiv 2510.00237) prompt is about 320 tokens of
which the board is 42; the next optimal move depends on where the box and the target lie *relative to the player*,
which a 2-layer, 64-wide transformer would have to compute from token positions alone (rotary embeddings give
attention scores, not coordinates, to later layers). Measured on the tiny text model (step data, 6x6 rooms, one box,
held-out levels): with the RAGEN prompt the next-move loss stays at the uniform ln 4 = 1.386 nats for 800 SFT steps;
with the board alone (100 tokens) accuracy creeps from 0.26 to 0.44 in 800 steps; with the board plus the listing
below it reaches 0.84 after 200 steps (lr 1e-3; 3e-3 is unstable). The tiny tokenizer keeps one token per cell for the
default legend (except ``√``, three bytes), so tokenisation was not the obstacle. The listing is the observation a
text agent is commonly given (object positions relative to itself, as in TextWorld-style descriptions); it states
no move and needs no solver.

Layout (``text`` / ``both`` modality)::

    Sokoban: push each box onto a target.
    Symbols: # wall, _ floor, O target, √ box on target, X box, P you, S you on target
    Moves: Up, Down, Left, Right
    ######
    ###_O#
    ...
    Box: 2 up 1 left of you; target: 1 up of it.
    Next move? <answer> [move] </answer>

With several boxes each gets a line, ``Box 2: ... of you; nearest target: ... of it.``; a box on a target says so.

With ``image`` modality the board and the listing are left out (the image carries the state). A vocabulary other
than Up/Down/Left/Right adds ``where A is Up, ...`` (prompt diversity); the listing keeps the words up/down/left/right.
"""

from __future__ import annotations

from envs.sokoban.level import Level, bits
from tasks.puzzles.diversity import BASE_ACTIONS, Variant

_LEGEND_NAMES = ("wall", "floor", "target", "box on target", "box", "you", "you on target")


def offset_words(d_row: int, d_col: int) -> str:
    """``(-2, 1)`` -> ``"2 up 1 right"``; ``(0, 0)`` -> ``"here"``."""
    parts = []
    if d_row:
        parts.append(f"{abs(d_row)} {'down' if d_row > 0 else 'up'}")
    if d_col:
        parts.append(f"{abs(d_col)} {'right' if d_col > 0 else 'left'}")
    return " ".join(parts) or "here"


def object_listing(state: Level) -> list[str]:
    """One line per box (row-major): its offset from the player and the offset of its nearest target from it
    (Manhattan distance, ties to the first target in row-major order; with one box, "target")."""
    w = state.width
    player_row, player_col = divmod(state.player, w)
    targets = [divmod(t, w) for t in bits(state.targets)]
    boxes = bits(state.boxes)
    lines = []
    for k, box in enumerate(boxes, 1):
        row, col = divmod(box, w)
        name = "Box" if len(boxes) == 1 else f"Box {k}"
        where = offset_words(row - player_row, col - player_col)
        if (state.targets >> box) & 1:
            lines.append(f"{name}: {where} of you; on a target.")
            continue
        t_row, t_col = min(targets, key=lambda t: abs(t[0] - row) + abs(t[1] - col))
        label = "target" if len(boxes) == 1 else "nearest target"
        lines.append(f"{name}: {where} of you; {label}: {offset_words(t_row - row, t_col - col)} of it.")
    return lines


def compact_prompt(state: Level, variant: Variant, fmt: str, modality: str, text_obs: str | None,
                   image_legend: str) -> str:
    """The compact prompt of one state (see the module docstring); ``fmt`` is step, plan or cot."""
    lines = ["Sokoban: push each box onto a target."]
    if modality in ("text", "both"):
        lines.append("Symbols: " + ", ".join(f"{s} {n}" for s, n in zip(variant.symbols, _LEGEND_NAMES)))
    if modality in ("image", "both"):
        lines.append(image_legend)
    moves = "Moves: " + ", ".join(variant.actions_shown)
    if tuple(variant.actions_shown) != BASE_ACTIONS:
        moves += " (where " + ", ".join(f"{n} is {b}" for n, b in zip(variant.actions_shown, BASE_ACTIONS)) + ")"
    lines.append(moves)
    if modality in ("text", "both"):
        if text_obs is None:
            raise ValueError("compact_prompt needs text_obs for modality 'text' or 'both'")
        lines.append(text_obs)
        lines.extend(object_listing(state))
    if fmt == "plan":
        lines.append("All moves, joined by '||'? <answer> [moves] </answer>")
    elif fmt == "step":
        lines.append("Next move? <answer> [move] </answer>")
    else:
        lines.append("Next move? <think> [thoughts] </think> <answer> [move] </answer>")
    return "\n".join(lines)
