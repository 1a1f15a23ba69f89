"""A rich progress bar over finished episodes (success count, faults, episodes/s) for the LIBERO runners."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tasks.libero.rollout import EpisodeRecord


@contextlib.contextmanager
def episode_progress(
    console: Console, title: str, enabled: bool = True
) -> Iterator[Callable[[EpisodeRecord, int, int], None]]:
    """Yield a ``(record, done, total)`` callback that advances a bar (or prints one line per episode)."""
    counts = {"success": 0, "fault": 0}

    def tally(record: EpisodeRecord) -> str:
        counts["success"] += int(record.result.success)
        counts["fault"] += int(record.result.reason.startswith("fault"))
        return f"success {counts['success']}  faults {counts['fault']}"

    if not enabled:
        def log(record: EpisodeRecord, done: int, total: int) -> None:
            r = record.result
            console.print(
                f"[{done}/{total}] task {r.task_id} init {r.init_state}: {r.reason} in {r.steps} steps "
                f"({r.wall_s:.1f}s); {tally(record)}"
            )

        yield log
        return
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(title, total=None, stats="")

        def advance(record: EpisodeRecord, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, stats=tally(record))

        yield advance
