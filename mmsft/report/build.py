"""``report.html``: one self-contained page per run, pipeline or study folder (see :mod:`mmsft.report`)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsft.report.collect import ReportData, collect, numeric
from mmsft.report.environment import capture
from mmsft.report.figures import column_shades, comparison_png, curves_png
from mmsft.report.media import Embedded, MediaBudget, data_uri, embed_file, embed_png_bytes
from mmsft.report.samples import data_transcripts, rollout_transcripts, table_rows
from mmsft.report.tables import TableData, fmt, json_tables, markdown_tables, summary_table

REPORT_FILE = "report.html"
DEFAULT_MAX_MB = 3.0


@dataclass
class ReportOptions:
    """Size knobs: the page stays under ``max_mb`` (media are dropped first), ``samples`` rollouts per run."""

    max_mb: float = DEFAULT_MAX_MB
    samples: int = 6
    thumb_px: int = 256
    max_runs_with_samples: int = 6
    max_gallery: int = 8
    eval_rows: int = 3


@dataclass
class _Group:
    name: str
    items: list[Any] = field(default_factory=list)


def _figure(path: Path, budget: MediaBudget) -> Embedded | None:
    """A PNG / JPEG figure of the folder (matrix.png, curves.png) at full size when it fits, else a thumbnail."""
    try:
        payload = path.read_bytes()
    except OSError:
        return None
    size = 4 * ((len(payload) + 2) // 3)
    if size <= budget.per_item and budget.take(size):
        mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        return Embedded("image", data_uri(payload, mime), path.name)
    return embed_file(path, budget, path.parent)


def _matrix_view(matrix: dict[str, Any]) -> dict[str, Any] | None:
    try:
        stages, sets = [str(s) for s in matrix["stages"]], [str(e) for e in matrix["eval_sets"]]
        main = matrix.get("main") or []
        table = [[v if numeric(v) else None for v in (main[r] if r < len(main) else [])][: len(sets)]
                 for r in range(len(stages))]
        table = [row + [None] * (len(sets) - len(row)) for row in table]
    except (KeyError, TypeError, IndexError):
        return None
    shades = column_shades(table)
    names = matrix.get("main_metric") or {}
    return {"columns": [(e, names.get(e, "?")) for e in sets],
            "rows": [(stage, [("–" if v is None else f"{v:.4g}", shades[r][c]) for c, v in enumerate(row)])
                     for r, (stage, row) in enumerate(zip(stages, table))],
            "metrics": json.dumps(matrix.get("metrics", {}), indent=1, default=str)[:50_000]}


def _environment(data: ReportData) -> tuple[TableData, str]:
    env = next((r.environment for r in data.runs if r.environment), None)
    note = ""
    if env is None:
        env = capture()
        note = "No environment.json was recorded with the run; this is the machine that wrote the report."
    rows: list[list[str]] = []
    for key, value in env.items():
        if key == "versions" and isinstance(value, dict):
            rows += [[f"version: {k}", str(v)] for k, v in value.items()]
        elif key == "cpu" and isinstance(value, dict):
            rows.append(["cpu", f"{value.get('model')} · {value.get('cores')} cores · bf16 instructions: "
                                f"{', '.join(value.get('bf16_flags') or []) or 'none'}"])
        elif key != "argv" and value not in (None, ""):
            rows.append([key, fmt(value if not isinstance(value, (list, dict)) else json.dumps(value))])
    return TableData("", ["", "value"], rows), note


def _results(data: ReportData) -> tuple[list[TableData], list[tuple[str, str]]]:
    tables: list[TableData] = []
    raw: list[tuple[str, str]] = []
    for name, content in data.results:
        if isinstance(content, str):
            parsed = markdown_tables(name, content)
            if parsed:
                tables += parsed
            else:
                raw.append((name, content[:5000]))
        else:
            tables += json_tables(name, content)
    return tables, raw


def render(data: ReportData, options: ReportOptions) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    budget = MediaBudget(total=int(options.max_mb * 2**20 * 0.6), per_item=int(options.max_mb * 2**20 * 0.2),
                         thumb_px=options.thumb_px)
    runs = []
    for run in data.runs:
        png, omitted = curves_png(run)
        runs.append({"name": run.name, "curves": embed_png_bytes(png, run.name).uri if png else None,
                     "omitted": omitted})
    comparison = comparison_png(data.runs) if len(data.runs) > 1 else None
    figures = [f for f in (_figure(p, budget) for p in data.figures) if f is not None]
    transcripts = []
    for run in data.runs[: options.max_runs_with_samples]:
        items = rollout_transcripts(run.path, run.rollout_files, run.config, budget, options.samples)
        label = "rollouts"
        if not items:
            items, label = data_transcripts(run.config, budget, min(3, options.samples)), "training data"
        if items:
            transcripts.append(_Group(f"{run.name} · {label}" if len(data.runs) > 1 else label, items))
    eval_tables = []
    for label, path in data.eval_files[:24]:
        columns, rows = table_rows(path, options.eval_rows)
        if columns:
            eval_tables.append(TableData(f"evaluation {label} · {path.name} (first {len(rows)})", columns, rows))
    gallery = [m for m in (embed_file(p, budget, data.root) for p in data.media[: options.max_gallery]) if m]
    results, raw_results = _results(data)
    environment, environment_note = _environment(data)
    notes = list(data.notes) + [f"left out: {o}" for o in budget.omitted]
    if len(data.media) > options.max_gallery:
        notes.append(f"{len(data.media) - options.max_gallery} more episode / media files not shown "
                     f"(cap {options.max_gallery})")
    nav = [("summary", "Summary"), ("matrix", "Matrix"), ("results", "Results"), ("curves", "Curves"),
           ("samples", "Samples"), ("config", "Config"), ("environment", "Environment"), ("notes", "Notes")]
    present = {"config": bool(data.config_text), "matrix": bool(data.matrix), "results": bool(results or raw_results
                                                                                              or figures),
               "notes": bool(notes)}
    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent)), autoescape=select_autoescape(["jinja"]))
    template = env.get_template("report.html.jinja")
    from mmsft.report.environment import package_version

    return template.render(
        title=data.title, kind=data.kind, root=str(data.root), generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        version=package_version("mmsft") or "?", nav=[n for n in nav if present.get(n[0], True)],
        summary=summary_table(data.runs), finals=[str(r.final_dir) for r in data.runs if r.final_dir],
        config_text=data.config_text[:100_000], config_name="pipeline.yaml" if data.kind == "pipeline" else
        "config.yaml (resolved)" if data.kind == "run" else "study arguments",
        runs=runs, comparison=embed_png_bytes(comparison, "comparison").uri if comparison else None,
        matrix=_matrix_view(data.matrix) if data.matrix else None, results=results, raw_results=raw_results,
        figures=figures, transcripts=transcripts, eval_tables=eval_tables, gallery=gallery,
        environment=environment, environment_note=environment_note, notes=notes)


def build_report(folder: str | Path, out: str | Path | None = None, options: ReportOptions | None = None) -> Path:
    """Write ``report.html`` for a run, pipeline or study folder (``out``: another file name); returns its path."""
    folder = Path(folder)
    if not folder.is_dir():
        from mmsft.report import ReportError

        raise ReportError(f"{folder}: not a folder (expected a run, pipeline or study folder with metrics.jsonl, "
                          "matrix.json or run folders below it)")
    html = render(collect(folder), options or ReportOptions())
    target = Path(out) if out else folder / REPORT_FILE
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target
