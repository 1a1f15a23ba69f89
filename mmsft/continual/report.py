"""Tables and plots of a continual experiment, computed from ``results.json`` alone (``mmsft continual report
RUN_DIR`` re-renders them): per-run metrics (:mod:`mmsft.continual.metrics`), their mean ± std over seeds per
method, costs (CPU time, rollouts, RIF-RFT filter counts) from each run's ``continual_log.json`` record;
``results.md``, ``heatmaps.png`` (mean accuracy matrix per method) and ``curves.png`` (each task's and probe's
accuracy after every stage, one line per method, ± std band over seeds)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mmsft.continual.metrics import general_deltas, joint_metrics, mean_matrix, mean_std, sequence_metrics

METRICS = ("acc", "bwt", "fwt", "forgetting", "plasticity_mean")
COSTS = ("train_cpu_s", "filter_cpu_s", "rl_rollouts", "filter_rollouts")


def run_costs(log: dict[str, Any]) -> dict[str, float]:
    """Training CPU seconds and rollouts (RL stages and PaST's skill run), RIF-RFT filter CPU seconds and rollouts,
    and the filter's kept / seen instances, summed over a run's stages."""
    out = {"train_cpu_s": 0.0, "train_wall_s": 0.0, "filter_cpu_s": 0.0, "rl_rollouts": 0, "filter_rollouts": 0,
           "kept": 0, "instances": 0, "skipped_stages": 0}
    for record in log.values():
        if not isinstance(record, dict):
            continue
        for key in ("train", "past_rl"):
            part = record.get(key) or {}
            out["train_cpu_s"] += float(part.get("cpu_s", 0.0))
            out["train_wall_s"] += float(part.get("wall_s", 0.0))
            out["rl_rollouts"] += int(part.get("rollouts", 0))
        selection = record.get("selection") or {}
        out["filter_cpu_s"] += float(selection.get("cpu_s", 0.0))
        out["filter_rollouts"] += int(selection.get("rollouts", 0))
        out["kept"] += int(selection.get("kept", 0))
        out["instances"] += int(selection.get("instances", 0))
        out["skipped_stages"] += int("skipped" in record)
    return out


def run_metrics(run: dict[str, Any]) -> dict[str, Any]:
    metrics = joint_metrics(run["A"]) if run["joint"] else sequence_metrics(run["A"])
    metrics["general"] = {name: general_deltas(rows) for name, rows in run["general"].items()}
    metrics["costs"] = run_costs(run.get("log", {}))
    return metrics


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """``{method: {"n_seeds", "joint", <metric>: mean±std, "general": {...}, "costs": {...}, "A_mean",
    "general_mean"}}``."""
    summary: dict[str, Any] = {}
    for method in [m["name"] for m in results["methods"]]:
        runs = [r for r in results["runs"] if r["method"] == method]
        if not runs:
            continue
        per_run = [run_metrics(r) for r in runs]
        entry: dict[str, Any] = {"n_seeds": len(runs), "seeds": [r["seed"] for r in runs], "joint": runs[0]["joint"],
                                 "rows": runs[0]["rows"]}
        for key in METRICS:
            entry[key] = mean_std([m[key] for m in per_run])
        entry["plasticity"] = [mean_std(col) for col in zip(*[m["plasticity"] for m in per_run])] \
            if not runs[0]["joint"] else None
        entry["general"] = {g: mean_std([m["general"][g]["final"] for m in per_run]) for g in runs[0]["general"]}
        entry["costs"] = {c: mean_std([m["costs"][c] for m in per_run]) for c in (*COSTS, "kept", "instances")}
        entry["A_mean"] = mean_matrix([r["A"] for r in runs])
        entry["general_mean"] = {g: mean_matrix([[[v] for v in r["general"][g]] for r in runs])
                                 for g in runs[0]["general"]}
        entry["per_seed"] = [{"seed": r["seed"], **{k: m[k] for k in METRICS}, "costs": m["costs"]}
                             for r, m in zip(runs, per_run)]
        summary[method] = entry
    return summary


def _fmt(stat: dict[str, Any] | None, digits: int = 3) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def to_markdown(results: dict[str, Any], summary: dict[str, Any]) -> str:
    tasks = [t["name"] for t in results["tasks"]]
    general = [g["name"] for g in results["general"]]
    lines = [f"# Continual post-training: {results['output_dir']}", "",
             "Tasks in order: " + ", ".join(f"{t['name']} ({t['metric']})" for t in results["tasks"])
             + (". General probes (never trained): " + ", ".join(f"{g['name']} ({g['metric']})"
                                                                  for g in results["general"]) if general else "")
             + f". Seeds: {', '.join(map(str, results['seeds']))}.", ""]
    starts = results.get("start", {})
    lines += ["## Starting model", "", "| model | " + " | ".join(tasks + general) + " |",
              "|" + " --- |" * (len(tasks) + len(general) + 1)]
    for label, values in starts.items():
        lines.append(f"| {label} | " + " | ".join(_cell(values.get(s)) for s in tasks + general) + " |")
    lines += ["", "## Summary (mean ± std over seeds)", "",
              "| method | ACC | BWT | FWT | forgetting | plasticity | "
              + "".join(f"Δ {g} | " for g in general) + "train CPU s | filter CPU s | RL rollouts | filter rollouts |",
              "|" + " --- |" * (10 + len(general))]
    for method, s in summary.items():
        c = s["costs"]
        lines.append(f"| {method}{' (joint)' if s['joint'] else ''} | {_fmt(s['acc'])} | {_fmt(s['bwt'])} | "
                     f"{_fmt(s['fwt'])} | {_fmt(s['forgetting'])} | {_fmt(s['plasticity_mean'])} | "
                     + "".join(f"{_fmt(s['general'][g])} | " for g in general)
                     + f"{_fmt(c['train_cpu_s'], 0)} | {_fmt(c['filter_cpu_s'], 0)} | {_fmt(c['rl_rollouts'], 0)} | "
                       f"{_fmt(c['filter_rollouts'], 0)} |")
    lines += ["", "## Accuracy after each stage (mean over seeds; rows: after stage, columns: held-out sets)", ""]
    for method, s in summary.items():
        lines += [f"### {method}", "", "| after | " + " | ".join(tasks + general) + " |",
                  "|" + " --- |" * (len(tasks) + len(general) + 1)]
        for r, row in enumerate(s["A_mean"]):
            values = list(row) + [s["general_mean"][g][r][0] for g in general]
            lines.append(f"| {s['rows'][r]} | " + " | ".join(_cell(v) for v in values) + " |")
        lines.append("")
    selections = [(run["method"], run["seed"], name, rec["selection"]) for run in results["runs"]
                  for name, rec in sorted(run.get("log", {}).items(), key=lambda kv: kv[1].get("index", 0))
                  if isinstance(rec, dict) and "instances" in (rec.get("selection") or {})]
    if selections:
        lines += ["## RIF-RFT instance filter", "", "| method | seed | stage | kept / instances | incompetent | "
                  "mastered | overlong | filter rollouts | filter CPU s |", "|" + " --- |" * 9]
        for method, seed, stage, sel in selections:
            lines.append(f"| {method} | {seed} | {stage} | {sel['kept']} / {sel['instances']} | {sel['incompetent']} "
                         f"| {sel['mastered']} | {sel['overlong']} | {sel['rollouts']} | {sel['cpu_s']:.1f} |")
        lines.append("")
    lines += ["## Definitions", "",
              "A[k, j]: accuracy on task j's held-out set after stage k (row start: the starting model). ACC = mean_j "
              "A[N, j]; BWT = mean_{k<N} (A[N, k] − A[k, k]) (negative: forgetting); FWT = mean_{k≥2} "
              "(A[k−1, k] − A[start, k]); forgetting = mean_{k<N} (max_{k≤l<N} A[l, k] − A[N, k]); plasticity = mean_k "
              "A[k, k]; Δ probe = probe after the last stage − probe on the starting model. Std is the sample "
              "standard deviation over seeds. CPU seconds are process CPU time of training (RL stages and PaST's "
              "skill run included) and of RIF-RFT's filter rollouts; RL rollouts = rollout batches × prompts per step "
              "× group size.", ""]
    return "\n".join(lines)


def plot_heatmaps(results: dict[str, Any], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = [t["name"] for t in results["tasks"]]
    general = [g["name"] for g in results["general"]]
    methods = list(summary)
    cols = min(2, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False,
                             figsize=(max(4.0, 0.9 * (len(tasks) + len(general)) + 1.8) * cols,
                                      max(2.5, 0.5 * (len(tasks) + 1) + 1.6) * rows))
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(methods):]:
        ax.axis("off")
    for ax, method in zip(flat, methods):
        s = summary[method]
        values = np.array([[np.nan if v is None else v for v in list(row) + [s["general_mean"][g][r][0]
                                                                              for g in general]]
                           for r, row in enumerate(s["A_mean"])], dtype=float)
        ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                v = values[r, c]
                ax.text(c, r, "–" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if not np.isnan(v) and v < 0.6 else "black")
        if general:
            ax.axvline(len(tasks) - 0.5, color="white", linewidth=2)
        ax.set_xticks(range(len(tasks) + len(general)), tasks + [f"{g}*" for g in general], rotation=30,
                      ha="right", fontsize=8)
        ax.set_yticks(range(len(s["rows"])), s["rows"], fontsize=8)
        ax.set_title(f"{method} (n={s['n_seeds']})", fontsize=10)
        ax.set_ylabel("after stage", fontsize=8)
    fig.suptitle("accuracy (mean over seeds; * = general probe, never trained)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_curves(results: dict[str, Any], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = [t["name"] for t in results["tasks"]]
    general = [g["name"] for g in results["general"]]
    panels = tasks + general
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(4.2 * cols, 3.0 * rows))
    x_labels = ["start", *tasks]
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(summary)}
    for p, name in enumerate(panels):
        ax = axes[p // cols][p % cols]
        for method, s in summary.items():
            runs = [r for r in results["runs"] if r["method"] == method]
            if name in tasks:
                series = [[row[tasks.index(name)] for row in r["A"]] for r in runs]
            else:
                series = [r["general"][name] for r in runs]
            data = np.array([[np.nan if v is None else v for v in seq] for seq in series], dtype=float)
            mean = np.nanmean(data, axis=0)
            if s["joint"]:
                ax.axhline(mean[-1], linestyle="--", linewidth=1.2, color=colours[method], label=f"{method} (joint)")
                continue
            xs = np.arange(len(mean))
            ax.plot(xs, mean, marker="o", markersize=3, color=colours[method], label=method)
            if data.shape[0] > 1:
                std = np.nanstd(data, axis=0, ddof=1)
                ax.fill_between(xs, mean - std, mean + std, color=colours[method], alpha=0.15)
        if name in tasks:
            ax.axvline(tasks.index(name) + 1, color="grey", linewidth=0.8, linestyle=":")
        ax.set_xticks(range(len(x_labels)), x_labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(name + ("" if name in tasks else " (general probe)"), fontsize=9)
    for p in range(len(panels), rows * cols):
        axes[p // cols][p % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("held-out accuracy after each stage (dotted: the task's own stage)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.png")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def render(run_dir: str | Path) -> dict[str, Any]:
    """Recompute the summary from ``<run_dir>/results.json`` and write results.json (with ``summary``),
    results.md, heatmaps.png and curves.png; returns the summary."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not path.is_file():
        from mmsft.continual.spec import ConfigError

        raise ConfigError(f"{run_dir} has no results.json (run `mmsft continual EXPERIMENT.yaml` first)")
    results = json.loads(path.read_text(encoding="utf-8"))
    summary = summarize(results)
    results["summary"] = summary
    tmp = path.with_name(f".results.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    (run_dir / "results.md").write_text(to_markdown(results, summary), encoding="utf-8")
    if summary:
        plot_heatmaps(results, summary, run_dir / "heatmaps.png")
        plot_curves(results, summary, run_dir / "curves.png")
    return summary


__all__ = ["render", "run_costs", "run_metrics", "summarize", "to_markdown"]
