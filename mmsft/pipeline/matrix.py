"""The stage × evaluation-set matrix of a pipeline run: ``matrix.json`` (every metric), ``matrix.md`` and
``matrix.png`` (the main metric of each set; the heatmap colours each column on its own scale — [0, 1] when all its
values lie there, else min to max — since sets report different metrics, and prints the values)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Matrix:
    stages: list[str]  # row labels in pipeline order ("base" first when the starting model is evaluated)
    eval_sets: list[str]  # column labels
    main_metric: dict[str, str] = field(default_factory=dict)  # eval set -> its main metric
    cells: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # stage -> set -> metrics

    def set(self, stage: str, eval_set: str, metrics: dict[str, float], main: str) -> None:
        self.cells.setdefault(stage, {})[eval_set] = dict(metrics)
        self.main_metric[eval_set] = main

    def main(self, stage: str, eval_set: str) -> float | None:
        """The main metric of one cell (None when not evaluated yet)."""
        metrics = self.cells.get(stage, {}).get(eval_set)
        return None if metrics is None else metrics[self.main_metric[eval_set]]

    def table(self) -> list[list[float | None]]:
        return [[self.main(s, e) for e in self.eval_sets] for s in self.stages]

    def to_dict(self) -> dict[str, Any]:
        return {"stages": self.stages, "eval_sets": self.eval_sets, "main_metric": self.main_metric,
                "main": self.table(), "metrics": self.cells}

    def to_markdown(self) -> str:
        header = ["stage", *(f"{e} ({self.main_metric.get(e, '?')})" for e in self.eval_sets)]
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for stage, row in zip(self.stages, self.table()):
            lines.append("| " + " | ".join([stage, *("–" if v is None else f"{v:.4g}" for v in row)]) + " |")
        return "\n".join(lines) + "\n"

    def write(self, run_dir: Path) -> None:
        """``matrix.json``, ``matrix.md`` and ``matrix.png`` in ``run_dir`` (each replaced atomically)."""
        run_dir = Path(run_dir)
        _atomic_text(run_dir / "matrix.json", json.dumps(self.to_dict(), indent=2) + "\n")
        _atomic_text(run_dir / "matrix.md", self.to_markdown())
        if self.stages and self.eval_sets:
            tmp = run_dir / f".matrix.{os.getpid()}.png"
            self.plot(tmp)
            os.replace(tmp, run_dir / "matrix.png")

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        values = np.array([[np.nan if v is None else v for v in row] for row in self.table()], dtype=float)
        shade = np.full_like(values, np.nan)
        for col in range(values.shape[1]):  # each column on its own scale
            column = values[:, col]
            if np.all(np.isnan(column)):
                continue
            lo, hi = np.nanmin(column), np.nanmax(column)
            if lo >= 0.0 and hi <= 1.0:  # rates and accuracies keep their absolute scale
                lo, hi = 0.0, 1.0
            shade[:, col] = 0.5 if hi == lo else (column - lo) / (hi - lo)
        width = max(4.0, 1.6 * len(self.eval_sets) + 2.0)
        fig, ax = plt.subplots(figsize=(width, max(2.5, 0.6 * len(self.stages) + 1.5)))
        ax.imshow(np.ma.masked_invalid(shade), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                v = values[r, c]
                text = "–" if math.isnan(v) else f"{v:.3g}"
                light = not math.isnan(shade[r, c]) and shade[r, c] < 0.6
                ax.text(c, r, text, ha="center", va="center", color="white" if light else "black", fontsize=9)
        ax.set_xticks(range(len(self.eval_sets)),
                      [f"{e}\n({self.main_metric.get(e, '?')})" for e in self.eval_sets], fontsize=8)
        ax.set_yticks(range(len(self.stages)), self.stages, fontsize=8)
        ax.set_xlabel("evaluation set (main metric; colour scaled per column)")
        ax.set_ylabel("after stage")
        fig.tight_layout()
        fig.savefig(path, dpi=110, format="png")
        plt.close(fig)


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
