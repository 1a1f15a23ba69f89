"""Success tables for LIBERO evaluations: per task and per suite, as JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from envs.libero.vector import EpisodeResult

# Published 4-suite results (spatial / object / goal / 10 -> average), printed beside ours for orientation.
REFERENCE_RESULTS: dict[str, dict[str, float]] = {
    "OpenVLA": {"libero_spatial": 84.7, "libero_object": 88.4, "libero_goal": 79.2, "libero_10": 53.7},
    "pi0-FAST": {"libero_spatial": 96.4, "libero_object": 96.8, "libero_goal": 88.6, "libero_10": 60.2},
    "pi0": {"libero_spatial": 96.8, "libero_object": 98.8, "libero_goal": 95.8, "libero_10": 85.2},
    "OpenVLA-OFT": {"libero_spatial": 97.6, "libero_object": 98.4, "libero_goal": 97.9, "libero_10": 94.5},
}


def summarize(
    results: Sequence[EpisodeResult],
    suite: str,
    instructions: dict[int, str],
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Aggregate episode results into ``{"suite", "tasks": [...], "success_rate", "episodes", "faults", ...}``."""
    tasks: dict[int, list[EpisodeResult]] = {}
    for result in results:
        tasks.setdefault(result.task_id, []).append(result)
    rows = []
    for task_id in sorted(tasks):
        episodes = tasks[task_id]
        successes = sum(r.success for r in episodes)
        rows.append(
            {
                "task_id": task_id,
                "instruction": instructions.get(task_id, ""),
                "episodes": len(episodes),
                "successes": successes,
                "success_rate": successes / len(episodes),
                "faults": sum(r.reason.startswith("fault") for r in episodes),
                "mean_steps": sum(r.steps for r in episodes) / len(episodes),
            }
        )
    total = len(results)
    successes = sum(r.success for r in results)
    return {
        "suite": suite,
        "episodes": total,
        "successes": successes,
        "success_rate": successes / total if total else 0.0,
        "faults": sum(r.reason.startswith("fault") for r in results),
        "tasks": rows,
        "meta": dict(meta or {}),
        "results": [r.to_dict() for r in sorted(results, key=lambda r: (r.task_id, r.init_state, r.episode_id))],
    }


def to_markdown(summary: dict[str, Any]) -> str:
    """A Markdown report: per-task table, suite total, run metadata and published reference numbers."""
    suite = summary["suite"]
    lines = [
        f"# LIBERO evaluation: {suite}",
        "",
        "| task | instruction | success | episodes | rate | faults | mean steps |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in summary["tasks"]:
        lines.append(
            f"| {row['task_id']} | {row['instruction']} | {row['successes']} | {row['episodes']} | "
            f"{100 * row['success_rate']:.1f}% | {row['faults']} | {row['mean_steps']:.0f} |"
        )
    lines.append(
        f"| **all** | **{suite}** | **{summary['successes']}** | **{summary['episodes']}** | "
        f"**{100 * summary['success_rate']:.1f}%** | {summary['faults']} | |"
    )
    if summary.get("meta"):
        lines += ["", "| setting | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in summary["meta"].items()]
    refs = {name: table[suite] for name, table in REFERENCE_RESULTS.items() if suite in table}
    if refs:
        lines += ["", f"Published {suite} success rates (500 episodes each): "
                  + ", ".join(f"{name} {value:.1f}%" for name, value in refs.items()) + "."]
    return "\n".join(lines) + "\n"


def write_report(summary: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    md_path = out_dir / "results.md"
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    md_path.write_text(to_markdown(summary))
    return json_path, md_path
