"""Reward and accuracy curves of RL runs, read from their ``metrics.jsonl`` (matplotlib, headless)."""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(runs: dict[str, tuple[Path, str]], out_path: Path) -> Path:
    """Two panels: mean reward per step and rollout accuracy per step, one line per run.

    ``runs`` maps a label to (metrics.jsonl path, metric key holding that run's accuracy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, (path, accuracy_key) in runs.items():
        records = read_metrics(path)
        for axis, key in zip(axes, ("reward/total", accuracy_key)):
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                axis.plot(*zip(*points), label=name, marker=".", linewidth=1)
    for axis, title in zip(axes, ("mean reward per rollout batch", "rollout accuracy")):
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
