"""Move-optimal Sokoban solvers: plain BFS (small rooms, reference) and push-level A* (larger rooms).

* :func:`solve_bfs` searches (player, boxes) states one move at a time. Simple and obviously optimal; used as the
  reference in tests and for rooms up to about 8x8 with 2 boxes.
* :func:`solve_astar` searches push states. An edge is "walk to the push position along a shortest path, then push",
  with cost ``walk + 1``; since boxes do not move while walking, every move-optimal solution decomposes this way, so
  A* with an admissible, consistent heuristic (sum over boxes of the push distance to the nearest target on the
  empty room) returns a move-optimal plan. Boxes on dead cells (no target reachable by pushing) are pruned.

Both return a :class:`Solution` with the action ids, the number of pushes, the number of expanded states and a
compact trace of the pushes (box cell before/after) that the CoT builders in ``tasks/puzzles`` serialise for
reasoning-style SFT targets (R-SFT; VGRP-Bench arXiv 2503.23064, Debunk arXiv 2510.00237).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

from envs.sokoban.level import Level, action_offsets, bits, walk_path, shift


@dataclass(frozen=True)
class Solution:
    """A solver result. ``pushes`` lists ``(box_from, box_to)`` flat cells in order."""

    actions: tuple[int, ...]
    pushes: tuple[tuple[int, int], ...]
    expanded: int

    def __len__(self) -> int:
        return len(self.actions)


class Unsolvable(RuntimeError):
    """Raised when a level has no solution or the search budget ran out."""


def _live_cells(level: Level) -> int:
    """Cells from which a lone box can be pushed onto some target (reverse pull closure from the targets)."""
    offsets = action_offsets(level.width)
    floor = level.floor
    live = level.targets
    frontier = bits(level.targets)
    while frontier:
        nxt = []
        for cell in frontier:
            for off in offsets:
                to = cell + off
                if (floor >> to) & 1 and (floor >> (to + off)) & 1 and not (live >> to) & 1:
                    live |= 1 << to
                    nxt.append(to)
        frontier = nxt
    return live


def push_distances(level: Level) -> dict[int, int]:
    """Minimal number of pushes from each live cell to the nearest target for a lone box (the A* heuristic)."""
    offsets = action_offsets(level.width)
    floor = level.floor
    dist = {t: 0 for t in bits(level.targets)}
    queue = deque(dist)
    while queue:
        cell = queue.popleft()
        for off in offsets:
            to = cell + off
            if to not in dist and (floor >> to) & 1 and (floor >> (to + off)) & 1:
                dist[to] = dist[cell] + 1
                queue.append(to)
    return dist


def solve_astar(level: Level, max_expansions: int = 200_000) -> Solution:
    """Move-optimal plan by A* over push states; raises :class:`Unsolvable` when none exists within the budget."""
    if level.is_solved():
        return Solution((), (), 0)
    offsets = action_offsets(level.width)
    floor, targets = level.floor, level.targets
    live = _live_cells(level)
    if level.boxes & ~live:
        raise Unsolvable("a box starts on a dead cell (no target reachable by pushing)")
    hdist = push_distances(level)

    def heuristic(boxes: int) -> int:
        return sum(hdist[b] for b in bits(boxes))

    start = (level.boxes, level.player)
    best_g = {start: 0}
    parent: dict[tuple[int, int], tuple[tuple[int, int], int, int] | None] = {start: None}
    heap = [(heuristic(level.boxes), 0, 0, start)]
    counter = 0
    expanded = 0
    while heap:
        _, neg_g, _, state = heapq.heappop(heap)
        g = -neg_g
        if g > best_g[state]:
            continue
        boxes, player = state
        if boxes == targets:
            return _reconstruct(level, parent, state, expanded)
        expanded += 1
        if expanded > max_expansions:
            break
        free = floor & ~boxes
        # breadth-first layers of the player's walk
        layers = [1 << player]
        reach = 1 << player
        frontier = reach
        while frontier:
            grown = (shift(frontier, offsets[0]) | shift(frontier, offsets[1]) | shift(frontier, offsets[2])
                     | shift(frontier, offsets[3])) & free & ~reach
            if not grown:
                break
            reach |= grown
            layers.append(grown)
            frontier = grown
        dest_ok = free & live
        for off in offsets:
            cand = boxes & shift(reach, -off) & shift(dest_ok, off)
            while cand:
                low = cand & -cand
                cand ^= low
                b = low.bit_length() - 1
                stand = b - off
                walk = next(k for k, layer in enumerate(layers) if (layer >> stand) & 1)
                new_boxes = boxes ^ low ^ (1 << (b + off))
                new_state = (new_boxes, b)
                new_g = g + walk + 1
                if new_g < best_g.get(new_state, 1 << 60):
                    best_g[new_state] = new_g
                    parent[new_state] = (state, stand, off)
                    counter += 1
                    heapq.heappush(heap, (new_g + heuristic(new_boxes), -new_g, counter, new_state))
    raise Unsolvable(f"A* found no solution within max_expansions={max_expansions} (expanded {expanded})")


def _reconstruct(level: Level, parent: dict, state: tuple[int, int], expanded: int) -> Solution:
    chain = []
    while parent[state] is not None:
        prev, stand, off = parent[state]
        chain.append((prev, stand, off))
        state = prev
    chain.reverse()
    offsets = action_offsets(level.width)
    actions: list[int] = []
    pushes: list[tuple[int, int]] = []
    for (boxes, player), stand, off in chain:
        actions.extend(walk_path(player, stand, level.floor & ~boxes, level.width))
        actions.append(offsets.index(off))
        pushes.append((stand + off, stand + 2 * off))
    return Solution(tuple(actions), tuple(pushes), expanded)


def solve_bfs(level: Level, max_states: int = 2_000_000) -> Solution:
    """Move-optimal plan by breadth-first search over (player, boxes); raises :class:`Unsolvable` if none."""
    if level.is_solved():
        return Solution((), (), 0)
    offsets = action_offsets(level.width)
    walls, targets = level.walls, level.targets
    live = _live_cells(level)
    start = (level.boxes, level.player)
    parent: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for state in frontier:
            boxes, player = state
            for a, off in enumerate(offsets):
                to = player + off
                if (walls >> to) & 1:
                    continue
                new_boxes = boxes
                if (boxes >> to) & 1:
                    beyond = to + off
                    if ((walls | boxes) >> beyond) & 1 or not (live >> beyond) & 1:
                        continue
                    new_boxes = boxes ^ (1 << to) ^ (1 << beyond)
                new_state = (new_boxes, to)
                if new_state in parent:
                    continue
                parent[new_state] = (state, a)
                if new_boxes == targets:
                    return _bfs_path(level, parent, new_state, len(parent))
                nxt.append(new_state)
        if len(parent) > max_states:
            raise Unsolvable(f"BFS exceeded max_states={max_states}")
        frontier = nxt
    raise Unsolvable("BFS exhausted the state space without solving the level")


def _bfs_path(level: Level, parent: dict, state: tuple[int, int], expanded: int) -> Solution:
    offsets = action_offsets(level.width)
    actions = []
    while parent[state] is not None:
        state, a = parent[state]
        actions.append(a)
    actions.reverse()
    pushes = []
    boxes, player = level.boxes, level.player
    for a in actions:
        to = player + offsets[a]
        if (boxes >> to) & 1:
            pushes.append((to, to + offsets[a]))
            boxes ^= (1 << to) | (1 << (to + offsets[a]))
        player = to
    return Solution(tuple(actions), tuple(pushes), expanded)


def solve(level: Level, method: str = "auto") -> Solution:
    """Dispatch: ``"bfs"``, ``"astar"``, or ``"auto"`` (A*; it is move-optimal and faster beyond tiny rooms)."""
    if method == "bfs":
        return solve_bfs(level)
    if method in ("astar", "auto"):
        return solve_astar(level)
    raise ValueError(f"solve method={method!r}; expected one of 'auto', 'astar', 'bfs'")
