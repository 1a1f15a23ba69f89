"""envs/sokoban/generator.py: no generated level is solved at reset (issue 8, defect 9), and generation stays a pure
function of the seed."""

from __future__ import annotations

import pytest

from envs.sokoban.generator import GeneratorConfig, generate_level, solved_regions
from envs.sokoban.level import Level, action_offsets, solved_after

# seeds whose level was already solved with the single-source reverse search (found on the code before the fix)
PREVIOUSLY_SOLVED = {
    ((6, 6), 1): (150, 228, 277, 523, 578, 633, 697, 793, 823, 834, 897, 958, 1379),
    ((8, 8), 2): (42, 211, 250, 381, 398, 1180, 1371, 1443),
}


@pytest.mark.parametrize("dim, boxes", sorted(PREVIOUSLY_SOLVED))
def test_no_level_is_solved_at_reset(dim, boxes):
    cfg = GeneratorConfig(dim=dim, num_boxes=boxes)
    solved = [seed for seed in range(1500) if generate_level(cfg, seed).is_solved()]
    assert solved == []


@pytest.mark.parametrize("dim, boxes", sorted(PREVIOUSLY_SOLVED))
def test_previously_solved_seeds_now_give_playable_levels(dim, boxes):
    cfg = GeneratorConfig(dim=dim, num_boxes=boxes)
    for seed in PREVIOUSLY_SOLVED[(dim, boxes)]:
        level = generate_level(cfg, seed)
        assert level == generate_level(cfg, seed) and level.solution == generate_level(cfg, seed).solution
        assert not level.is_solved() and level.solution
        assert solved_after(level, list(level.solution)) == len(level.solution), seed


def test_solved_regions_cover_every_part_of_the_floor():
    # the single-cell pocket above the target is its own region: a box on the target with the player in the pocket
    # is a solved state, and the reverse search must start from it too
    level = Level.from_ascii(["######",
                              "####@#",
                              "### *#",
                              "###  #",
                              "#    #",
                              "######"])
    floor = ((1 << 36) - 1) & ~level.walls
    regions = solved_regions(level.player, floor, level.targets, action_offsets(6))
    assert [start for start, _ in regions] == [level.player, 2 * 6 + 3]
    union = 0
    for _, reach in regions:
        assert not union & reach
        union |= reach
    assert union == floor & ~level.targets
