"""Run-directory logging: ``metrics.jsonl``, tensorboard events, a rich progress bar and a closing summary table.

A resumed run logs from its checkpoint's step again, so on start the records after that step are removed from
``metrics.jsonl`` (:func:`trim_metrics`; a line cut short by a crash goes too) and tensorboard purges its events
after it: every step appears exactly once.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


METRICS_FILE = "metrics.jsonl"


def trim_metrics(run_dir: Path, step: int) -> int:
    """Keep the records of ``metrics.jsonl`` with ``step <= step`` (rewritten atomically); returns how many went."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_bytes().splitlines():
        try:
            text = line.decode("utf-8")
            record = json.loads(text)
            keep = isinstance(record, dict) and int(record["step"]) <= step
        except (ValueError, KeyError, TypeError):  # a partial last line from a crash, or a foreign line
            keep = False
        if keep:
            kept.append(text + "\n")
        else:
            dropped += 1
    if dropped:
        tmp = path.with_name(f".tmp-{METRICS_FILE}-{os.getpid()}")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, path)
    return dropped


class MetricsLogger:
    def __init__(self, run_dir: Path, total_steps: int, start_step: int = 0, tensorboard: bool = True,
                 progress: bool = True, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.history: list[dict[str, Any]] = []
        if enabled:
            trim_metrics(self.run_dir, start_step)
        self._file = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") if enabled else None
        self._writer = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: events at steps > start_step from before a crash are hidden (they are logged again).
            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=start_step + 1)
        self._progress = None
        if enabled and progress:
            self._progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                                      TimeRemainingColumn(), console=self.console, transient=False)
            self._task = self._progress.add_task("train", total=total_steps, completed=start_step, info="")
            self._progress.start()
        self._t0 = time.perf_counter()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.perf_counter() - self._t0, 3), **metrics}
        self.history.append(record)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)
        if self._progress is not None:
            info = " ".join(f"{k.split('/')[-1]}={metrics[k]:.4g}" for k in ("train/loss", "train/tokens_per_s")
                            if k in metrics)
            self._progress.update(self._task, completed=step, info=info)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()

    def summary_table(self, title: str, rows: dict[str, Any]) -> None:
        if not self.enabled:
            return
        table = Table(title=title)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in rows.items():
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        self.console.print(table)
