"""Sokoban side by side: our ``envs/sokoban`` against gym-sokoban 0.0.6 (the base of RAGEN, verl-agent and
"Debunk the Myth of SFT Generalization", arXiv 2510.00237), on the same machine, in the same run.

gym-sokoban needs numpy < 2, legacy gym 0.26 and setuptools < 82, so it runs in its own virtual env
(``benchmarks/gym_sokoban_side.py``, started with that env's interpreter); ours runs here. Set that env up once::

    python3.11 -m venv /tmp/gymsok && /tmp/gymsok/bin/pip install gym-sokoban 'numpy<2'

Run: ``OMP_NUM_THREADS=1 python benchmarks/sokoban_vs_gym.py [--gym-python /tmp/gymsok/bin/python] [--quick]``.
Rows: level generation per size (levels/s), ``step`` with an RGB observation at 16 px per cell (gym's sprite size),
with a compact observation (gym: ``tiny_rgb_array``; ours: the text grid), and the game logic alone; the ratio
column is ours / gym-sokoban. Both sides measure wall time of one process each, run one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SIZES = (((6, 6), 1), ((8, 8), 2), ((10, 10), 3))


def ours(levels: tuple[int, int, int], steps: int) -> dict:
    from envs.sokoban.core import REWARD_PRESETS, SokobanCore
    from envs.sokoban.env import SokobanEnv
    from envs.sokoban.generator import GeneratorConfig, generate_level

    out: dict = {}
    for (dim, boxes), n in zip(SIZES, levels):
        cfg = GeneratorConfig(dim=dim, num_boxes=boxes)
        start = time.perf_counter()
        for seed in range(1_000_000, 1_000_000 + n):
            generate_level(cfg, seed)
        gen = n / (time.perf_counter() - start)
        rates = {}
        for mode in ("image", "text"):
            env = SokobanEnv(dim=dim, num_boxes=boxes, obs_mode=mode, cell_px=16, max_steps=10**9,
                             compute_optimal=False)
            env.reset(seed=0)
            k = steps if mode == "text" else max(200, steps // 5)
            start = time.perf_counter()
            for i in range(k):
                env.step(i & 3)
            rates[mode] = k / (time.perf_counter() - start)
        core = SokobanCore(generate_level(cfg, 0), REWARD_PRESETS["gym_sokoban"])
        start = time.perf_counter()
        for i in range(steps * 5):
            core.step(i & 3)
        rates["logic"] = steps * 5 / (time.perf_counter() - start)
        out[f"{dim[0]}x{dim[1]}/{boxes}"] = {"levels_per_s": gen, "steps_per_s_rgb": rates["image"],
                                             "steps_per_s_compact": rates["text"], "steps_per_s_logic": rates["logic"]}
    return out


def gym_side(python: str, levels: tuple[int, int, int], steps: int) -> dict:
    script = Path(__file__).with_name("gym_sokoban_side.py")
    proc = subprocess.run([python, str(script), "--levels", *map(str, levels), "--steps", str(steps)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise RuntimeError(f"gym-sokoban side failed under {python}: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def table(mine: dict, theirs: dict) -> str:
    rows = [("metric", "size", "mmsft", "gym-sokoban", "ratio")]
    for size, m in mine.items():
        g = theirs["sizes"][size]
        for label, a, b in (("level generation (levels/s)", "levels_per_s", "levels_per_s"),
                            ("step + RGB obs, 16 px/cell (steps/s)", "steps_per_s_rgb", "steps_per_s_rgb"),
                            ("step + compact obs: text / tiny_rgb (steps/s)", "steps_per_s_compact",
                             "steps_per_s_tiny"),
                            ("game logic only (steps/s)", "steps_per_s_logic", "steps_per_s_logic")):
            rows.append((label, size, _num(m[a]), _num(g[b]), f"{m[a] / g[b]:.1f}x"))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * 5]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gym-python", default="/tmp/gymsok/bin/python", help="interpreter of the gym-sokoban venv")
    parser.add_argument("--quick", action="store_true", help="fewer levels and steps (noisier)")
    args = parser.parse_args()
    levels = (40, 10, 3) if args.quick else (200, 40, 10)
    steps = 4000 if args.quick else 20_000
    if not Path(args.gym_python).exists():
        sys.exit(f"{args.gym_python} does not exist; create the gym-sokoban venv first (see this file's docstring)")
    load_before = os.getloadavg()[0]
    theirs = gym_side(args.gym_python, levels, steps)
    mine = ours(levels, steps)
    print(f"gym-sokoban side: numpy {theirs['numpy']}; levels per size {levels}; {steps} steps per step metric; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (a shared box slows both sides)")
    print(table(mine, theirs))
    for size, g in theirs["sizes"].items():
        print(f"gym-sokoban {size} generation: mean {g['gen_mean_ms']:.1f} ms, median {g['gen_median_ms']:.1f} ms, "
              f"max {g['gen_max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
