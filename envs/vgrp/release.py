"""Reader for the VGRP-Bench release format (Ren et al., arXiv 2503.23064; HF dataset ``VGRP-Bench/VGRP-Bench``).

Each release row has ``file_name`` (the PNG), ``initialization`` (a dict stored as a string: size, board and side
clues), ``prompt`` and ``sample_answer`` (JSON with perception, think and answer); configs are named
``<puzzle>_<N>x<N>``. This reader takes files already on disk (JSONL, JSON, CSV/TSV, or Parquet when pyarrow is
installed), or a folder of them, and never downloads anything. Release boards are scored for perception with
``envs.vgrp.answer.perception_correct`` via ``ReleaseItem.instance()``; their side clues keep VGRP's own layout
(``clues["vgrp_initialization"]``) because that layout is not documented.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from envs.vgrp.answer import to_grid
from envs.vgrp.core import EMPTY, Grid, Instance
from envs.vgrp.registry import canonical_name

_BOARD_KEYS = ("board", "initial_board", "init_board", "grid", "initialization", "puzzle", "state")
_CONFIG_RE = re.compile(r"([A-Za-z_\-]+?)[_\-]?(\d+)x(\d+)")


@dataclass
class ReleaseItem:
    """One VGRP-Bench release row."""

    puzzle: str
    size: int
    board: Grid
    initialization: dict[str, Any]
    prompt: str
    sample_answer: str
    image_path: Path | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def instance(self) -> Instance:
        """An ``Instance`` carrying the release board (solution taken from ``sample_answer`` when it parses)."""
        from envs.vgrp.answer import parse_response

        parsed = parse_response(self.sample_answer)
        solution = parsed.answer if parsed.answer is not None else [row[:] for row in self.board]
        return Instance(self.puzzle, self.size, [row[:] for row in self.board], solution,
                        {"vgrp_initialization": self.initialization}, None, None)


def _literal(s: Any) -> Any:
    if not isinstance(s, str):
        return s
    try:
        return json.loads(s)
    except ValueError:
        pass
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError):
        return None


def _board_from(init: Any) -> Grid | None:
    if isinstance(init, (list, tuple)):
        g = to_grid(init)
        return g if g and all(len(r) == len(g) for r in g) else None
    if isinstance(init, dict):
        for key in _BOARD_KEYS:
            if key in init:
                g = _board_from(init[key])
                if g is not None:
                    return g
    return None


def _norm_cell(x: str) -> str:
    x = str(x).strip().lower()
    return EMPTY if x in ("", "0", "*", ".", "none", "null") else x


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        yield from (data if isinstance(data, list) else data.get("rows", data.get("data", [])))
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            yield from csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError(f"reading {path} needs pyarrow (pip install pyarrow); or convert it to JSONL") from e
        yield from pq.read_table(path).to_pylist()
    else:
        raise ValueError(f"path={str(path)!r}: expected a .jsonl, .json, .csv, .tsv or .parquet file")


def read_release(path: str | Path, puzzle: str | None = None) -> list[ReleaseItem]:
    """Read VGRP-Bench rows from a file or a folder (searched recursively); ``puzzle`` overrides the name."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"VGRP-Bench release path {str(path)!r} does not exist")
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.suffix.lower() in (".jsonl", ".json", ".csv", ".tsv", ".parquet"))
    items: list[ReleaseItem] = []
    for file in files:
        for i, row in enumerate(_rows(file)):
            for key in ("initialization",):
                if key not in row:
                    raise KeyError(f"{file}: row {i} has no {key!r} column; expected file_name, initialization, "
                                   f"prompt, sample_answer")
            init = _literal(row["initialization"])
            board = _board_from(init)
            if board is None:
                raise ValueError(f"{file}: row {i}: could not find a square board in initialization={row['initialization']!r:.200}")
            board = [[_norm_cell(x) for x in r] for r in board]
            name = puzzle or row.get("puzzle") or row.get("category")
            if not name:
                m = _CONFIG_RE.search(str(row.get("config") or file.parent.name or file.stem)) or _CONFIG_RE.search(file.stem)
                name = m.group(1) if m else None
            if not name:
                raise ValueError(f"{file}: row {i}: cannot tell the puzzle; pass puzzle=... or name the folder "
                                 f"<puzzle>_<N>x<N> as in the release")
            image = row.get("file_name") or row.get("image_path")
            items.append(ReleaseItem(
                puzzle=canonical_name(str(name)), size=len(board), board=board,
                initialization=init if isinstance(init, dict) else {"board": init},
                prompt=str(row.get("prompt", "")), sample_answer=str(row.get("sample_answer", "")),
                image_path=(file.parent / image) if isinstance(image, str) and image else None, raw=dict(row)))
    return items
