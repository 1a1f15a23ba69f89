"""The gym-sokoban half of ``benchmarks/sokoban_vs_gym.py``; runs *inside the legacy virtual env* (gym-sokoban 0.0.6
needs numpy < 2, legacy gym 0.26 and setuptools < 82), so it imports nothing from mmsft. Prints one JSON object.

Measured, per room size: level generation (``room_utils.generate_room`` with the env's own parameters; the global
``random`` / ``np.random`` are seeded per level, since ``env.seed`` does not reach the generator), ``step`` with the
default RGB observation (16 px sprites), with ``tiny_rgb_array`` (1 px per cell), and the game logic alone (``step``
with rendering replaced by a no-op).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import warnings


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, nargs=3, default=(200, 40, 8), help="levels per size (6/8/10)")
    parser.add_argument("--steps", type=int, default=20_000, help="steps per step benchmark")
    args = parser.parse_args()
    import numpy as np
    from gym_sokoban.envs.room_utils import generate_room
    from gym_sokoban.envs.sokoban_env import SokobanEnv

    out: dict = {"numpy": np.__version__, "sizes": {}}
    for (dim, boxes), n in zip((((6, 6), 1), ((8, 8), 2), ((10, 10), 3)), args.levels):
        times = []
        for seed in range(n):
            random.seed(seed)
            np.random.seed(seed)
            start = time.perf_counter()
            while True:
                try:  # the env's own retry policy on generator failure (reset() retries the same way)
                    generate_room(dim=dim, num_steps=int(1.7 * (dim[0] + dim[1])), num_boxes=boxes)
                    break
                except (RuntimeError, RuntimeWarning):
                    continue
            times.append(time.perf_counter() - start)
        times.sort()
        rates = {}
        random.seed(0)
        np.random.seed(0)
        env = SokobanEnv(dim_room=dim, num_boxes=boxes, max_steps=10**9)
        env.reset()
        for mode in ("rgb_array", "tiny_rgb_array", "none"):
            if mode == "none":
                env.render = lambda *a, **k: None  # type: ignore[method-assign]
            steps = args.steps if mode != "rgb_array" else max(200, args.steps // 50)
            start = time.perf_counter()
            for i in range(steps):
                env.step(1 + (i & 3), observation_mode="rgb_array" if mode == "none" else mode)
            rates[mode] = steps / (time.perf_counter() - start)
        out["sizes"][f"{dim[0]}x{dim[1]}/{boxes}"] = {
            "levels": n, "gen_mean_ms": 1000 * sum(times) / n, "gen_median_ms": 1000 * times[n // 2],
            "gen_max_ms": 1000 * times[-1], "levels_per_s": n / sum(times),
            "steps_per_s_rgb": rates["rgb_array"], "steps_per_s_tiny": rates["tiny_rgb_array"],
            "steps_per_s_logic": rates["none"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
