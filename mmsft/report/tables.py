"""Results files as tables: a JSON mapping of mappings (method → metrics) becomes a grid, the remaining scalars a
key/value list; Markdown pipe tables (``study_results.md``) are parsed into rows. Cells are plain strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmsft.report.collect import numeric

MAX_ROWS = 80
MAX_COLUMNS = 16


@dataclass
class TableData:
    caption: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _grid(name: str, mapping: dict[str, Any]) -> TableData | None:
    """A mapping whose values are all mappings of scalars → rows × columns."""
    if not mapping or not all(isinstance(v, dict) and v and all(_scalar(x) for x in v.values())
                              for v in mapping.values()):
        return None
    columns = list(dict.fromkeys(k for v in mapping.values() for k in v))[:MAX_COLUMNS]
    rows = [[str(key), *(fmt(v.get(c, "")) for c in columns)] for key, v in list(mapping.items())[:MAX_ROWS]]
    return TableData(name, ["", *columns], rows)


def json_tables(name: str, data: Any) -> list[TableData]:
    """Grids for every mapping-of-mappings (at the top or one level down), then the other scalars as key/value."""
    if isinstance(data, list):
        rows = [r for r in data[:MAX_ROWS] if isinstance(r, dict)]
        columns = list(dict.fromkeys(k for r in rows for k in r if _scalar(r[k])))[:MAX_COLUMNS]
        return [TableData(name, columns, [[fmt(r.get(c, "")) for c in columns] for r in rows])] if columns else []
    if not isinstance(data, dict):
        return []
    tables: list[TableData] = []
    top = _grid(name, data)
    if top is not None:
        return [top]
    flat: list[list[str]] = []
    for key, value in data.items():
        if str(key).startswith("_") or (key == "args" and isinstance(value, dict)):
            continue  # private entries; a command's arguments are shown under Config
        grid = _grid(f"{name} · {key}", value) if isinstance(value, dict) else None
        if grid is not None:
            tables.append(grid)
        elif isinstance(value, dict):
            flat += [[f"{key}.{k}", fmt(v)] for k, v in value.items() if _scalar(v)]
        elif _scalar(value):
            flat.append([str(key), fmt(value)])
    if flat:
        tables.append(TableData(name, ["key", "value"], flat[:MAX_ROWS]))
    return tables


def markdown_tables(name: str, text: str) -> list[TableData]:
    """Pipe tables of a Markdown file (the separator row dropped); an empty list when there are none."""
    tables: list[TableData] = []
    block: list[list[str]] = []
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|"):
            cells = [c.strip() for c in stripped[1:-1].split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                block.append(cells)
            continue
        if block:
            tables.append(TableData(name, block[0][:MAX_COLUMNS], [r[:MAX_COLUMNS] for r in block[1:MAX_ROWS + 1]]))
            block = []
    return tables


def summary_table(runs: list[Any], keys_per_run: int = 10) -> TableData:
    """One row per run: steps and its most telling summary metrics."""
    from mmsft.report.figures import metric_keys

    if len(runs) == 1:  # one run: every summary metric, one per row
        run = runs[0]
        keys = ["steps", *(k for k in metric_keys([run.summary]) if k != "steps")]
        rows = [[key, fmt(run.summary[key])] for key in keys if numeric(run.summary.get(key))]
        return TableData("", ["metric", "value"], rows[:MAX_ROWS])
    chosen: list[str] = []
    for run in runs:
        for key in metric_keys([run.summary])[:keys_per_run]:
            if key not in chosen and key != "steps":
                chosen.append(key)
    chosen = chosen[:MAX_COLUMNS - 2]
    rows = []
    for run in runs:
        steps = run.summary.get("steps", run.records[-1]["step"] if run.records else "–")
        rows.append([run.name, fmt(steps), *(fmt(run.summary[k]) if numeric(run.summary.get(k)) else "–"
                                             for k in chosen)])
    return TableData("summary", ["run", "steps", *chosen], rows)
