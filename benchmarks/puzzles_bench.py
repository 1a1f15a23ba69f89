"""Benchmark of the Sokoban and General Points worlds against the issue-4 targets (measured vs target).

Run: ``OMP_NUM_THREADS=1 python benchmarks/puzzles_bench.py [--quick]``. Prints one table row per metric. Levels
for generation are drawn from fresh seeds (no cache); solver timings use pre-generated levels. gym-sokoban side by
side (in its own virtual env, numpy < 2): ``benchmarks/sokoban_vs_gym.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from envs.general_points.cards import HandConfig, sample_hand
from envs.general_points.reward import score_answer
from envs.sokoban.core import REWARD_PRESETS, SokobanCore
from envs.sokoban.env import SokobanEnv
from envs.sokoban.generator import GeneratorConfig, generate_level
from envs.sokoban.render import render_image
from envs.sokoban.solver import solve_astar
from envs.sokoban.vector import SokobanVecEnv


def _rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - start)


def bench_core(n: int) -> float:
    core = SokobanCore(generate_level(GeneratorConfig((8, 8), 2), 0), REWARD_PRESETS["gym_sokoban"])
    step = core.step

    def run(k: int) -> None:
        for i in range(k):
            step(i & 3)
    return _rate(run, n)


def bench_env_text(n: int) -> float:
    env = SokobanEnv(dim=(8, 8), num_boxes=2, obs_mode="text", max_steps=10**9, compute_optimal=False)
    env.reset(seed=0)

    def run(k: int) -> None:
        for i in range(k):
            env.step(i & 3)
    return _rate(run, n)


def bench_vec(batch: int, steps: int) -> float:
    vec = SokobanVecEnv(batch, dim=(6, 6), num_boxes=1, obs_mode="text", max_steps=10**9, compute_optimal=False)
    vec.reset(list(range(batch)))
    actions = np.random.default_rng(0).integers(0, 4, (steps, batch))
    start = time.perf_counter()
    for a in actions:
        vec.step(a)
    return batch * steps / (time.perf_counter() - start)


def bench_generation(dim: tuple[int, int], boxes: int, n: int, offset: int) -> tuple[float, float]:
    cfg = GeneratorConfig(dim=dim, num_boxes=boxes)
    times = []
    for seed in range(offset, offset + n):
        start = time.perf_counter()
        generate_level(cfg, seed)
        times.append(time.perf_counter() - start)
    times.sort()
    return n / sum(times), times[min(n - 1, int(0.99 * n))]


def bench_solver(dim: tuple[int, int], boxes: int, n: int) -> float:
    cfg = GeneratorConfig(dim=dim, num_boxes=boxes)
    levels = [generate_level(cfg, 10_000 + s) for s in range(n)]
    times = []
    for level in levels:
        start = time.perf_counter()
        solve_astar(level)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.mean(times)


def bench_render(dim: tuple[int, int], cell_px: int, n: int) -> float:
    codes = generate_level(GeneratorConfig(dim=dim, num_boxes=2), 1).codes()
    render_image(codes, cell_px)

    def run(k: int) -> None:
        for _ in range(k):
            render_image(codes, cell_px)
    return _rate(run, n)


def bench_gp(n: int) -> tuple[float, float]:
    cfg = HandConfig()
    start = time.perf_counter()
    hands = [sample_hand(cfg, s) for s in range(n)]
    deal = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for hand in hands:
        score_answer(hand, {"formula": hand.solution})
    verify_us = 1e6 * (time.perf_counter() - start) / n
    return deal, verify_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (noisier)")
    args = parser.parse_args()
    q = 0.2 if args.quick else 1.0

    def n(k: int) -> int:
        return max(5, int(k * q))

    rows = []

    def row(metric: str, target: str, measured: float, unit: str, ok: bool) -> None:
        rows.append((metric, target, f"{measured:,.1f} {unit}", "yes" if ok else "NO"))

    r = bench_core(n(500_000))
    row("Sokoban step, text state, single env (8x8/2)", ">= 300k steps/s", r, "steps/s", r >= 300e3)
    r = bench_env_text(n(50_000))
    row("Sokoban env.step + text obs, single env", ">= 30k obs/s", r, "steps/s", r >= 30e3)
    r = bench_vec(256, n(400))
    row("Sokoban batched step + text obs, B=256", ">= 50k env-steps/s", r, "env-steps/s", r >= 50e3)
    for dim, boxes, count, target in (((6, 6), 1, 2000, 1000), ((8, 8), 2, 400, 100), ((10, 10), 3, 100, 10)):
        rate, p99 = bench_generation(dim, boxes, n(count), 1_000_000)
        label = f"{dim[0]}x{dim[1]}/{boxes}"
        row(f"Level generation {label}", f">= {target:,}/s", rate, "levels/s", rate >= target)
        if boxes == 3:
            row(f"Level generation {label} p99", "< 1 s", p99 * 1000, "ms", p99 < 1.0)
    ms = bench_solver((8, 8), 2, n(200))
    row("Solver (A*, move-optimal) 8x8/2", "<= 10 ms/level", ms, "ms", ms <= 10)
    ms = bench_solver((10, 10), 3, n(50))
    row("Solver (A*, move-optimal) 10x10/3", "<= 200 ms/level", ms, "ms", ms <= 200)
    r = bench_render((10, 10), 80, n(1000))
    row("Render 800x800 px (10x10 at 80 px/cell)", ">= 200 images/s", r, "images/s", r >= 200)
    r = bench_render((8, 8), 48, n(3000))
    row("Render RGB at 48 px/cell (8x8)", ">= 3k frames/s", r, "frames/s", r >= 3000)
    deal, verify_us = bench_gp(n(500))
    row("General Points: deal a solvable 4-card hand", "(no target)", deal, "hands/s", True)
    row("General Points: verify an answer", "<= 200 us", verify_us, "us", verify_us <= 200)

    widths = [max(len(str(r[i])) for r in rows + [("metric", "target", "measured", "meets")]) for i in range(4)]
    header = ("metric", "target", "measured", "meets")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
