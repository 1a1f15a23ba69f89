"""Results people look at: ``report.html`` per run / pipeline / study (:func:`build_report`, ``mmsft report``), the
run's recorded environment (:mod:`mmsft.report.environment`) and model cards for saved model folders
(:mod:`mmsft.report.model_card`).

The report is one self-contained HTML file — config, curves (PNG), the stage × eval-set matrix, results tables,
sampled rollouts as chat transcripts with their images, episode GIF / MP4s, and the environment — with every image
embedded as a ``data:`` URI and nothing fetched from anywhere, under a few MB by default (thumbnails, capped samples).
It is written automatically at the end of every training run, pipeline and study through :func:`write_report_safely`,
which never lets a report failure lose a finished run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mmsft.errors import register_user_error


@register_user_error
class ReportError(ValueError):
    """The folder given to ``mmsft report`` is not something a report can be made of."""


from mmsft.report.build import REPORT_FILE, ReportOptions, build_report  # noqa: E402


def write_report_safely(folder: str | Path, options: ReportOptions | None = None) -> Path | None:
    """Write ``<folder>/report.html`` and print its path; any failure is a warning, never an exception."""
    try:
        path = build_report(folder, options=options)
    except Exception as exc:  # noqa: BLE001 — the run is finished and saved; a report problem must not undo that
        print(f"mmsft: warning: could not write the report for {folder} ({type(exc).__name__}: {exc}); "
              f"retry with: mmsft report {folder}", file=sys.stderr, flush=True)
        return None
    print(f"report: {path} ({path.stat().st_size / 1024:.0f} KB)", file=sys.stderr, flush=True)
    return path


__all__ = ["REPORT_FILE", "ReportError", "ReportOptions", "build_report", "write_report_safely"]
