"""The study's conclusions, computed from the continual summary (never written by hand): does sequential RFT forget
less than sequential SFT here (BWT, forgetting, general-probe change), and what RIF-RFT's filter saves against
plain RFT (rollouts, CPU time) and what it costs in accuracy."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _m(stat: dict[str, Any] | None) -> float | None:
    return None if not stat else stat.get("mean")


def _pm(stat: dict[str, Any] | None, digits: int = 3) -> str:
    if not stat or stat.get("mean") is None:
        return "n/a"
    return f"{stat['mean']:+.{digits}f} ± {stat['std']:.{digits}f}" if stat["n"] > 1 else f"{stat['mean']:+.{digits}f}"


def _separated(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The means differ by more than the two seed standard deviations together (a rough, stated criterion)."""
    return abs(a["mean"] - b["mean"]) > (a.get("std") or 0.0) + (b.get("std") or 0.0)


def forgetting_statement(summary: dict[str, Any], sft: str = "sft", rft: str = "rft") -> str:
    if sft not in summary or rft not in summary or _m(summary[sft]["bwt"]) is None or _m(summary[rft]["bwt"]) is None:
        return "RFT vs SFT: not measured (both methods with at least two tasks are needed)."
    s, r = summary[sft], summary[rft]
    holds = r["bwt"]["mean"] > s["bwt"]["mean"]
    clear = _separated(r["bwt"], s["bwt"])
    general = "; ".join(f"general probe {g}: SFT {_pm(s['general'][g])}, RFT {_pm(r['general'][g])}"
                        for g in s["general"])
    lines = [
        f"**\"RFT forgets less than SFT\" {'holds' if holds else 'does not hold'} here"
        f"{'' if clear else ' only within seed noise'}**: BWT {_pm(r['bwt'])} (RFT) vs {_pm(s['bwt'])} (SFT); "
        f"forgetting {_pm(r['forgetting'])} vs {_pm(s['forgetting'])}; {general}.",
        f"Plasticity (accuracy on a task right after training on it): RFT {_pm(r['plasticity_mean'])} vs SFT "
        f"{_pm(s['plasticity_mean'])}; final average accuracy RFT {_pm(r['acc'])} vs SFT {_pm(s['acc'])}.",
    ]
    if holds and _m(r["plasticity_mean"]) is not None and r["plasticity_mean"]["mean"] < s["plasticity_mean"]["mean"]:
        lines.append("RFT also learns less per stage here, so part of its smaller forgetting is smaller change: "
                     "compare the matrices, not BWT alone.")
    return "\n".join(lines)


def rif_statement(summary: dict[str, Any], rft: str = "rft", rif: str = "rif_rft") -> str:
    if rft not in summary or rif not in summary:
        return "RIF-RFT vs RFT: not measured."
    r, f = summary[rft]["costs"], summary[rif]["costs"]
    rft_rollouts, rif_train, rif_filter = _m(r["rl_rollouts"]), _m(f["rl_rollouts"]), _m(f["filter_rollouts"])
    rft_cpu, rif_cpu, filter_cpu = _m(r["train_cpu_s"]), _m(f["train_cpu_s"]), _m(f["filter_cpu_s"])
    kept, seen = _m(f["kept"]), _m(f["instances"])
    if None in (rft_rollouts, rif_train, rif_filter, rft_cpu, rif_cpu, filter_cpu) or not rft_rollouts or not rft_cpu:
        return "RIF-RFT vs RFT: costs not recorded."

    def pct(new: float, old: float) -> str:
        return f"{100.0 * (new - old) / old:+.0f}%" if old and math.isfinite(old) else "n/a"

    total_rollouts, total_cpu = rif_train + rif_filter, rif_cpu + filter_cpu
    return (f"RIF-RFT kept {kept:.0f} of {seen:.0f} training instances (mean per seed over all stages). "
            f"Training rollouts: {rif_train:.0f} vs {rft_rollouts:.0f} for RFT ({pct(rif_train, rft_rollouts)}); with "
            f"the filter's own {rif_filter:.0f} rollouts {total_rollouts:.0f} ({pct(total_rollouts, rft_rollouts)}). "
            f"Training CPU time {rif_cpu:.0f} s vs {rft_cpu:.0f} s ({pct(rif_cpu, rft_cpu)}); with the filter "
            f"{total_cpu:.0f} s ({pct(total_cpu, rft_cpu)}). Accuracy: ACC {_pm(summary[rif]['acc'])} vs "
            f"{_pm(summary[rft]['acc'])}, BWT {_pm(summary[rif]['bwt'])} vs {_pm(summary[rft]['bwt'])}.")




def reward_curve(metrics_path: Path, fraction: float = 0.2) -> dict[str, float] | None:
    """Mean ``reward/total`` over the first and the last ``fraction`` of an RL stage's logged steps (at least one
    step each), and the step count; None for a stage that logged no reward (SFT). Lines that are not JSON objects
    (a stage killed mid-write) are skipped."""
    rewards: list[float] = []
    if not metrics_path.is_file():
        return None
    for line in metrics_path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        value = row.get("reward/total") if isinstance(row, dict) else None
        if isinstance(value, (int, float)) and math.isfinite(value):
            rewards.append(float(value))
    if not rewards:
        return None
    k = max(1, int(len(rewards) * fraction))
    return {"first": sum(rewards[:k]) / k, "last": sum(rewards[-k:]) / k, "steps": float(len(rewards))}


def rl_reward_table(run_dir: Path, methods: list[str], tasks: list[str]) -> str:
    """Markdown: per RL method and task, the training reward over the first → last 20% of the stage's steps (mean
    over seeds) — whether RL learned on its own prompts, which the held-out matrix alone does not show."""
    lines = ["| method | " + " | ".join(tasks) + " |", "| --- |" + " --- |" * len(tasks)]
    found = False
    for method in methods:
        cells = []
        for k, task in enumerate(tasks, start=1):
            curves = [c for seed_dir in sorted((run_dir / "runs" / method).glob("seed*"))
                      if (c := reward_curve(seed_dir / "stages" / f"{k}-{task}" / "metrics.jsonl")) is not None]
            if curves:
                found = True
                n = len(curves)
                cells.append(f"{sum(c['first'] for c in curves) / n:.2f} → {sum(c['last'] for c in curves) / n:.2f} "
                             f"({sum(c['steps'] for c in curves) / n:.0f} steps)")
            else:
                cells.append("–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if not found:
        return "RL training reward: no RL stage logged a reward."
    return ("RL training reward, first → last 20% of each stage's steps (mean over seeds; sampled at the RL "
            "temperature on the stage's own training prompts):\n\n" + "\n".join(lines))


__all__ = ["forgetting_statement", "reward_curve", "rif_statement", "rl_reward_table"]
