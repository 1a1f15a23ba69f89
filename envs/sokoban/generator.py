"""Sokoban level generation by reverse play from the solved state.

Recipe (the gym-sokoban idea used by RAGEN, verl-agent and "Debunk the Myth of SFT Generalization",
arXiv 2510.00237, re-implemented with bitmask states and an owned RNG so that seeds reproduce levels):

1. carve a room with a random walk of ``1.7 * (height + width)`` steps stamping small 3x3 masks (turn probability
   0.35), keeping a wall border;
2. put the boxes on random targets and the player on a random free cell;
3. breadth-first search over *pulls* (the reverse of pushes), with the player position normalised to its reachable
   region, up to a node budget, started from *every* solved state (boxes on the targets, the player in any region
   of the remaining floor); BFS depth is therefore the minimal number of pushes that solves the state, and no
   state at depth >= 1 is solved;
4. keep a state from the deepest layer (or the layer ``max_pushes``), preferring states with more boxes off their
   targets, and rebuild the forward solution by reversing the pull chain and walking between pushes.

Trivial levels (fewer than ``min_pushes`` pushes) are rejected and a new room is carved.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from envs.sokoban.level import Level, action_offsets, bits, walk_path, flood, shift

_MASKS = (  # 3x3 stamps (row-major), as in the classic carving procedure
    (0, 0, 0, 1, 1, 1, 0, 0, 0),
    (0, 1, 0, 0, 1, 0, 0, 1, 0),
    (0, 0, 0, 1, 1, 0, 0, 1, 0),
    (0, 0, 0, 1, 1, 0, 1, 1, 0),
    (0, 0, 0, 0, 1, 1, 0, 1, 0),
)
_DIRECTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generator. ``dim`` is (height, width) including the wall border."""

    dim: tuple[int, int] = (6, 6)
    num_boxes: int = 1
    min_pushes: int = 1
    max_pushes: int | None = None
    max_nodes: int | None = None
    max_tries: int = 200

    def __post_init__(self) -> None:
        h, w = self.dim
        if h < 5 or w < 5:
            raise ValueError(f"GeneratorConfig.dim={self.dim}: height and width must be >= 5")
        if h * w > 30 * 30:
            raise ValueError(f"GeneratorConfig.dim={self.dim}: at most 900 cells are supported")
        if self.num_boxes < 1:
            raise ValueError(f"GeneratorConfig.num_boxes={self.num_boxes}: expected >= 1")
        if self.min_pushes < 1:
            raise ValueError(f"GeneratorConfig.min_pushes={self.min_pushes}: expected >= 1 (0 would allow solved levels)")
        if self.max_pushes is not None and self.max_pushes < self.min_pushes:
            raise ValueError(f"GeneratorConfig.max_pushes={self.max_pushes} is below min_pushes={self.min_pushes}")
        if self.max_tries < 1:
            raise ValueError(f"GeneratorConfig.max_tries={self.max_tries}: expected >= 1")

    @property
    def node_budget(self) -> int:
        """Reverse-search node budget; defaults scale with room area and box count."""
        if self.max_nodes is not None:
            return self.max_nodes
        area = (self.dim[0] - 2) * (self.dim[1] - 2)
        return int(min(3000, 12 * area * self.num_boxes))


def carve_room(height: int, width: int, rng: random.Random) -> int:
    """Random-walk room carving; returns the wall bitmask (border always wall)."""
    floor = [False] * (height * width)
    steps = int(1.7 * (height + width))
    r, c = rng.randint(1, height - 2), rng.randint(1, width - 2)
    dr, dc = rng.choice(_DIRECTIONS)
    for _ in range(steps):
        if rng.random() < 0.35:
            dr, dc = rng.choice(_DIRECTIONS)
        stamp = rng.choice(_MASKS)
        for k, on in enumerate(stamp):
            if on:
                rr, cc = r + k // 3 - 1, c + k % 3 - 1
                if 0 < rr < height - 1 and 0 < cc < width - 1:
                    floor[rr * width + cc] = True
        r = min(max(r + dr, 1), height - 2)
        c = min(max(c + dc, 1), width - 2)
    walls = 0
    for i, is_floor in enumerate(floor):
        if not is_floor:
            walls |= 1 << i
    return walls


def solved_regions(player: int, floor: int, targets: int, offsets: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    """Every solved state of a room as ``(player cell, reachable region)``: boxes on all targets, the player in any
    connected part of the remaining floor (the region of ``player`` first, then the others by lowest cell).

    A solved layout with the player in another region is still solved, so the reverse search must start from all
    of them: seeded with one region only, it reaches the others after a few pulls, counts them as unsolved states
    at depth >= 1 and could return one as a level (the level would be solved at reset).
    """
    free = floor & ~targets
    first = flood(player, free, offsets)
    out = [(player, first)]
    rest = free & ~first
    while rest:
        cell = (rest & -rest).bit_length() - 1
        reach = flood(cell, free, offsets)
        out.append((cell, reach))
        rest &= ~reach
    return out


def _reverse_search(walls: int, targets: int, player: int, width: int, n_cells: int, cfg: GeneratorConfig,
                    rng: random.Random) -> tuple[int, int, list[tuple[int, int]]] | None:
    """Pull-BFS from the solved states. Returns ``(boxes, player, pulls)`` of the chosen state or ``None``."""
    offsets = action_offsets(width)
    floor = ((1 << n_cells) - 1) & ~walls
    # key -> (parent key, pulled box cell before the pull, offset of the pull, player cell after the pull)
    parents: dict[tuple[int, int], tuple | None] = {}
    layer = []
    for region_start, reach in solved_regions(player, floor, targets, offsets):
        key = (targets, (reach & -reach).bit_length())
        parents[key] = None
        layer.append((targets, reach, region_start, key))
    layers = [layer]
    budget = cfg.node_budget
    limit = cfg.max_pushes
    while layer and len(parents) < budget and (limit is None or len(layers) <= limit):
        nxt_layer = []
        for boxes, reach, _, key in layer:
            for off in offsets:
                pullable = boxes & shift(reach, off) & shift(reach, 2 * off)
                while pullable:
                    low = pullable & -pullable
                    pullable ^= low
                    b = low.bit_length() - 1
                    new_boxes = boxes ^ low ^ (1 << (b + off))
                    new_player = b + 2 * off
                    new_reach = flood(new_player, floor & ~new_boxes, offsets)
                    new_key = (new_boxes, (new_reach & -new_reach).bit_length())
                    if new_key in parents:
                        continue
                    parents[new_key] = (key, b, off, new_player)
                    nxt_layer.append((new_boxes, new_reach, new_player, new_key))
            if len(parents) >= budget:
                break
        if nxt_layer:
            layers.append(nxt_layer)
        layer = nxt_layer
    depth = len(layers) - 1
    if limit is not None:
        depth = min(depth, limit)
    if depth < cfg.min_pushes:
        return None
    candidates = layers[depth]
    best_off = max(bin(boxes & ~targets).count("1") for boxes, _, _, _ in candidates)
    pool = [s for s in candidates if bin(s[0] & ~targets).count("1") == best_off]
    boxes, _, chosen_player, key = pool[rng.randrange(len(pool))]
    pulls: list[tuple[int, int]] = []
    while parents[key] is not None:
        parent_key, b, off, _ = parents[key]
        pulls.append((b, off))
        key = parent_key
    return boxes, chosen_player, pulls  # pulls are ordered last-pull-first == forward push order


def _forward_solution(walls: int, boxes: int, player: int, pulls: list[tuple[int, int]], width: int,
                      n_cells: int) -> list[int]:
    """Turn the reversed pull chain into forward moves: walk to each push position, then push."""
    offsets = action_offsets(width)
    floor = ((1 << n_cells) - 1) & ~walls
    moves: list[int] = []
    for b, off in pulls:
        # reverse pull moved the box b -> b+off with the player ending at b+2off; forward: push from b+2off
        moves.extend(walk_path(player, b + 2 * off, floor & ~boxes, width))
        push_dir = offsets.index(-off)
        moves.append(push_dir)
        boxes ^= (1 << (b + off)) | (1 << b)
        player = b + off
    return moves


def generate_level(cfg: GeneratorConfig, seed: int) -> Level:
    """Generate a level as a pure function of ``(cfg, seed)``; raises ``RuntimeError`` after ``max_tries`` rooms."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected a non-negative int")
    rng = random.Random(seed)
    height, width = cfg.dim
    n_cells = height * width
    for _ in range(cfg.max_tries):
        walls = carve_room(height, width, rng)
        free_cells = bits(((1 << n_cells) - 1) & ~walls)
        if len(free_cells) < cfg.num_boxes + 2:
            continue
        picks = rng.sample(free_cells, cfg.num_boxes + 1)
        targets = 0
        for cell in picks[:-1]:
            targets |= 1 << cell
        found = _reverse_search(walls, targets, picks[-1], width, n_cells, cfg, rng)
        if found is None:
            continue
        boxes, player, pulls = found
        solution = _forward_solution(walls, boxes, player, pulls, width, n_cells)
        return Level(height, width, walls, targets, boxes, player, tuple(solution), seed)
    raise RuntimeError(f"generate_level: no level with >= {cfg.min_pushes} pushes for dim={cfg.dim}, "
                       f"num_boxes={cfg.num_boxes} after max_tries={cfg.max_tries} rooms (seed={seed})")
