"""Shared pieces of the puzzle studies (``mmsft study debunk``, ``mmsft study vgrp``): recipes for SFT on built data
and GRPO through the agent loop, a wall/CPU clock, held-out evaluation through the agent loop with transcripts,
and Markdown / PNG writers.

Recipes follow the tiny-model settings that are known to learn these worlds (tests/test_env_rl_sokoban.py: SFT lr
1e-3 constant, GRPO lr 2e-4, success reward, groups on the same level seed; "Debunk the Myth of SFT
Generalization", arXiv 2510.00237, and VGRP-Bench, arXiv 2503.23064, describe the full-scale setups).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUIET = {"progress": False, "tensorboard": False, "torch_threads": 1, "resume": "never"}


@dataclass
class Clock:
    """Wall time and this process's CPU time (all threads) per named phase; the studies report both because the
    development machine is shared (wall time depends on the other jobs, CPU time much less)."""

    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    child_cpu: float = 0.0
    _start: tuple[float, float] = field(default_factory=lambda: (time.perf_counter(), time.process_time()))

    def run(self, name: str, fn: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn()
        self.add(name, time.perf_counter() - wall, time.process_time() - cpu)
        return value

    def add(self, name: str, wall_s: float, cpu_s: float, child: bool = False) -> None:
        """Add to phase ``name``; ``child=True`` for CPU time spent in a worker process (counted in :meth:`total`)."""
        entry = self.phases.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0})
        entry["wall_s"] = round(entry["wall_s"] + wall_s, 1)
        entry["cpu_s"] = round(entry["cpu_s"] + cpu_s, 1)
        if child:
            self.child_cpu += cpu_s

    def total(self) -> dict[str, float]:
        """Wall time since start and CPU time of this process plus its training workers."""
        return {"wall_s": round(time.perf_counter() - self._start[0], 1),
                "cpu_s": round(time.process_time() - self._start[1] + self.child_cpu, 1)}


def _train_job(cfg: dict[str, Any]) -> tuple[str, float, float]:
    """Worker body of :func:`train_all`: one training run; returns (final model folder, wall s, CPU s)."""
    import torch

    from mmsft import api

    torch.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.process_time()
    result = api.train(cfg)
    return str(result.final_model_dir), time.perf_counter() - wall, time.process_time() - cpu


def default_workers() -> int:
    """Training processes run side by side: the usable cores, at most 2 (the studies' design point)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, usable))


def add_workers_argument(parser: Any, what: str) -> None:
    """The studies' ``--workers`` option (``what``: the runs it parallelises)."""
    parser.add_argument("--workers", type=int, default=None,
                        help=f"{what} side by side (default: usable cores, at most 2; 1 = in-process)")


def apply_workers(settings: Any, workers: int | None) -> None:
    """Set ``settings.workers`` from ``--workers`` (None keeps the preset's); refuse a count below 1."""
    from mmsft.config_base import ConfigError

    if workers is not None:
        if workers < 1:
            raise ConfigError(f"--workers {workers}: expected an int >= 1")
        settings.workers = workers


def train_all(jobs: dict[str, dict[str, Any]], clock: Clock, workers: int, log: Any = print,
              prefix: str = "train/") -> dict[str, Path]:
    """Train independent runs (``{name: config dict}``), ``workers`` at a time in fresh (spawned) single-threaded
    processes, or in this process when ``workers`` is 1; records each run's wall and CPU time under
    ``prefix + name`` and returns ``{name: final model folder}``. Jobs are started in the given order (put the
    longest first)."""
    if workers <= 1 or len(jobs) <= 1:
        from mmsft import api

        out = {}
        for name, cfg in jobs.items():
            out[name] = clock.run(prefix + name, lambda: api.train(cfg)).final_model_dir
            log(f"trained {name}")
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {name: pool.submit(_train_job, cfg) for name, cfg in jobs.items()}
        out = {}
        for name, future in futures.items():
            folder, wall, cpu = future.result()
            clock.add(prefix + name, wall, cpu, child=True)
            out[name] = Path(folder)
            log(f"trained {name} ({wall:.0f} s wall, {cpu:.0f} s CPU in a worker)")
    return out


def sft_config(model: str | Path, train_path: str | Path, out_dir: str | Path, steps: int, micro_batch: int,
               max_length: int, lr: float = 1e-3, seed: int = 0, media_root: str | Path | None = None,
               ) -> dict[str, Any]:
    """Plain SFT on a JSONL built by ``mmsft data build`` (loss on the assistant turn only)."""
    data: dict[str, Any] = {"train_path": str(train_path), "max_length": max_length}
    if media_root is not None:
        data["media_roots"] = [str(media_root)]
    return {"stage": "sft", "model": {"name_or_path": str(model)}, "data": data, "objective": {"name": "sft"},
            "optim": {"lr": lr, "scheduler": "constant"},
            "train": {"output_dir": str(out_dir), "max_steps": steps, "micro_batch_size": micro_batch, "seed": seed,
                      **QUIET}}


def grpo_env_config(model: str | Path, task: str, out_dir: str | Path, steps: int, env: dict[str, Any],
                    max_length: int, group_size: int = 8, prompts_per_step: int = 8, lr: float = 2e-4,
                    micro_batch: int = 64, seed: int = 0, plugins: tuple[str, ...] = ()) -> dict[str, Any]:
    """GRPO through the agent loop on ``task`` (groups of ``group_size`` episodes on one level seed), no KL."""
    return {"task": task, "plugins": list(plugins), "algorithm": "grpo", "model": {"name_or_path": str(model)},
            "data": {"max_length": max_length}, "objective": {"kl": {"coef": 0.0}},
            "rl": {"group_size": group_size, "prompts_per_step": prompts_per_step, "temperature": 1.0},
            "env": {"eval_episodes": 0, "log_media": 0, "log_episodes": 2, **env},
            "optim": {"lr": lr, "scheduler": "constant"},
            "train": {"output_dir": str(out_dir), "max_steps": steps, "micro_batch_size": micro_batch, "seed": seed,
                      **QUIET}}


def evaluate_env(model: str | Path, task: str, env: dict[str, Any], levels: int, max_length: int,
                 transcripts: Path | None = None, keep: int = 3, plugins: tuple[str, ...] = ()) -> dict[str, float]:
    """Greedy held-out episodes (``test`` split seeds) through the agent loop; returns success, parse-failure rate
    (per turn) and turns, and writes ``keep`` episode transcripts as text."""
    from mmsft.rollout.env_config import EnvConfig
    from mmsft.rollout.evaluate import evaluate_model

    cfg = EnvConfig(eval_episodes=levels, eval_temperature=0.0, eval_samples=1, log_media=0, log_episodes=0, **env)
    metrics, episodes = evaluate_model(str(model), task, cfg, plugins=plugins, max_length=max_length)
    if transcripts is not None:
        write_transcripts(episodes[:keep], transcripts)
    return {"success": metrics["eval/success_rate"], "parse_failure_rate": metrics["eval/parse_failure_rate"],
            "turns": metrics["eval/turns"], "return": metrics["eval/return"], "episodes": len(episodes)}


def write_transcripts(episodes: list[Any], path: Path) -> Path:
    """Plain-text transcripts: the first turn's prompt, then every turn's output, parse outcome and reward."""
    lines = []
    for ep in episodes:
        lines.append(f"=== level seed {ep.seed}: success={ep.success} end={ep.end} return={ep.episode_return:.2f}")
        for k, turn in enumerate(ep.turns):
            if k == 0:
                lines.append("--- prompt (turn 0)\n" + turn.prompt)
            lines.append(f"--- turn {turn.turn} [{turn.outcome}, reward {turn.reward:+.2f}] {turn.output!r}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(x: Any) -> str:
        return f"{x:.3f}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def plot_panels(panels: list[tuple[str, dict[str, list[tuple[float, float]]]]], out_path: Path,
                bars: tuple[str, list[str], dict[str, list[float]]] | None = None) -> Path:
    """Line panels (title, {label: [(x, y)]}) plus an optional grouped bar panel (title, groups, {label: values})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    count = len(panels) + (bars is not None)
    fig, axes = plt.subplots(1, count, figsize=(5 * count, 3.8))
    axes = np.atleast_1d(axes)
    for axis, (title, series) in zip(axes, panels):
        for label, points in series.items():
            if points:
                axis.plot(*zip(*points), label=label, linewidth=1)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6)
    if bars is not None:
        title, groups, values = bars
        axis = axes[-1]
        width = 0.8 / max(len(values), 1)
        for k, (label, ys) in enumerate(values.items()):
            axis.bar(np.arange(len(groups)) + k * width, ys, width, label=label)
        axis.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=30, fontsize=7, ha="right")
        axis.set_title(title, fontsize=9)
        axis.set_ylim(0, 1)
        axis.legend(fontsize=6)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def series(records: list[dict[str, Any]], key: str, every: int = 1) -> list[tuple[float, float]]:
    points = [(float(r["step"]), float(r[key])) for r in records if key in r and "step" in r]
    return points[::max(every, 1)]
