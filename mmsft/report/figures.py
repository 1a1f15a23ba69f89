"""Curves of a run as one PNG (matplotlib, Agg backend): one small panel per metric, most telling first (loss,
reward, accuracy, success, evaluation, KL, entropy, gradient norm, learning rate, ...), capped in number; long
series are thinned to a fixed number of points. A comparison figure overlays the same metrics across runs."""

from __future__ import annotations

import io
import math
from typing import Any, Sequence

from mmsft.report.collect import RunData, numeric

MAX_PANELS = 12
MAX_POINTS = 400
COLUMNS = 4
SKIP_KEYS = frozenset({"step", "time"})
PRIORITY = ("train/loss", "reward/total", "reward/", "accuracy", "success", "eval/", "train/kl", "kl", "entropy",
            "grad_norm", "train/lr", "response_length", "rollout/", "train/")


def _rank(key: str) -> tuple[int, str]:
    for index, token in enumerate(PRIORITY):
        if key == token or (token.endswith("/") and key.startswith(token)) or (not token.endswith("/") and token in key):
            return index, key
    return len(PRIORITY), key


def metric_keys(records: Sequence[dict[str, Any]]) -> list[str]:
    """Every metric with at least one finite value, most telling first."""
    seen: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in SKIP_KEYS and numeric(value):
                seen.setdefault(key, None)
    return sorted(seen, key=_rank)


def series(records: Sequence[dict[str, Any]], key: str, max_points: int = MAX_POINTS) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric, thinned to at most ``max_points`` (every k-th point, the last always kept)."""
    points = [(int(r["step"]), float(r[key])) for r in records if numeric(r.get(key)) and "step" in r]
    if len(points) > max_points:
        stride = math.ceil(len(points) / max_points)
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return [p[0] for p in points], [p[1] for p in points]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _style(axis: Any, title: str) -> None:
    """Small title and few ticks (fixed margins instead of tight_layout: a report is drawn at the end of every run)."""
    axis.set_title(title, fontsize=8)
    axis.tick_params(labelsize=7)
    axis.locator_params(nbins=4)
    axis.grid(alpha=0.3)


def _png(fig: Any, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    _pyplot().close(fig)
    return buffer.getvalue()


def curves_png(run: RunData, max_panels: int = MAX_PANELS, dpi: int = 70) -> tuple[bytes | None, list[str]]:
    """The run's curves as PNG bytes (None when it logged nothing) and the metrics left out by the panel cap."""
    keys = metric_keys(run.records)
    if not keys:
        return None, []
    constant = {k for k in keys if len(set(series(run.records, k)[1])) <= 1}
    keys = [k for k in keys if k not in constant] + [k for k in keys if k in constant]  # flat lines last
    shown, omitted = keys[:max_panels], keys[max_panels:]
    plt = _pyplot()
    rows = math.ceil(len(shown) / COLUMNS)
    columns = min(COLUMNS, len(shown))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.3 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(shown):
            axis.set_visible(False)
            continue
        steps, values = series(run.records, shown[index])
        axis.plot(steps, values, marker="." if len(steps) < 40 else None, linewidth=1.2, color="#3465a4")
        _style(axis, shown[index])
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.08 / rows, top=1 - 0.12 / rows, wspace=0.32, hspace=0.5)
    return _png(fig, dpi), omitted


def comparison_png(runs: Sequence[RunData], max_panels: int = 6, dpi: int = 70) -> bytes | None:
    """The metrics that several runs share, one line per run (None when fewer than two runs share one)."""
    counts: dict[str, int] = {}
    for run in runs:
        for key in metric_keys(run.records):
            counts[key] = counts.get(key, 0) + 1
    shared = sorted((k for k, n in counts.items() if n >= 2), key=_rank)[:max_panels]
    if len(runs) < 2 or not shared:
        return None
    plt = _pyplot()
    columns = min(3, len(shared))
    rows = math.ceil(len(shared) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.0 * columns, 2.6 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(shared):
            axis.set_visible(False)
            continue
        for run in runs:
            steps, values = series(run.records, shared[index])
            if steps:
                axis.plot(steps, values, linewidth=1.2, label=run.name, marker="." if len(steps) < 40 else None)
        _style(axis, shared[index])
        if index == 0:
            axis.legend(fontsize=7)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.1 / rows, top=1 - 0.12 / rows, wspace=0.3, hspace=0.5)
    return _png(fig, dpi)


def column_shades(table: list[list[float | None]]) -> list[list[tuple[str, str] | None]]:
    """CSS (background, text) colours for a stage × eval-set table, each column on its own scale ([0, 1] when its values lie
    there, else min to max) — the same rule as ``matrix.png``."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    shades: list[list[tuple[str, str] | None]] = [[None] * len(row) for row in table]
    for col in range(len(table[0]) if table else 0):
        values = [row[col] for row in table if numeric(row[col])]
        if not values:
            continue
        lo, hi = min(values), max(values)
        if lo >= 0.0 and hi <= 1.0:
            lo, hi = 0.0, 1.0
        for r, row in enumerate(table):
            if numeric(row[col]):
                t = 0.5 if hi == lo else (row[col] - lo) / (hi - lo)
                red, green, blue, _ = cmap(0.25 + 0.75 * t)
                background = f"rgb({int(red * 255)},{int(green * 255)},{int(blue * 255)})"
                shades[r][col] = (background, "#fff" if t < 0.6 else "#000")
    return shades
