"""Reading a run folder for the report: what kind of folder it is and what it holds.

Kinds: a **run** (``metrics.jsonl`` or ``config.yaml`` at the top: one ``mmsft train``), a **pipeline**
(``pipeline.yaml`` or ``matrix.json``: stages under ``stages/``, evaluations under ``eval/``), and a **study** (any
other folder: its results files, figures, and the runs found below it, e.g. ``mmsft study cls-rl``'s ``runs/*``).
Every file is read defensively: a damaged line or file is counted and named in the report, never fatal.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmsft.report.environment import read_environment

SKIP_DIRS = frozenset({"checkpoints", "final", "merged", "tensorboard", "wandb", "mlruns", "base-model", "model",
                       "images", "data", "__pycache__"})
MAX_DEPTH = 3  # how deep below a study folder runs are looked for
MAX_JSON_BYTES = 2_000_000  # results / matrix files read whole; larger ones are skipped
MAX_METRIC_LINES = 200_000
MEDIA_SUFFIXES = (".gif", ".mp4", ".webm")


@dataclass
class RunData:
    """One training run folder."""

    path: Path
    name: str
    config: dict[str, Any] | None = None
    config_text: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] | None = None
    rollout_files: list[Path] = field(default_factory=list)
    checkpoints: int = 0
    final_dir: Path | None = None


@dataclass
class ReportData:
    """Everything the report shows about one folder."""

    root: Path
    kind: str  # run | pipeline | study
    title: str
    config_text: str = ""
    runs: list[RunData] = field(default_factory=list)
    matrix: dict[str, Any] | None = None
    results: list[tuple[str, Any]] = field(default_factory=list)  # (file name, parsed JSON or markdown text)
    figures: list[Path] = field(default_factory=list)  # PNG / JPEG files at the top of the folder
    eval_files: list[tuple[str, Path]] = field(default_factory=list)  # (label, predictions / completions JSONL)
    media: list[Path] = field(default_factory=list)  # GIF / MP4 / images of episodes and rollouts
    notes: list[str] = field(default_factory=list)


def read_json(path: Path) -> Any:
    """A JSON file (NaN allowed) or None when missing, too large or unreadable."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records of a ``metrics.jsonl`` (the last record of each step wins, steps in order) and the bad-line count."""
    by_step: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    bad = 0
    try:
        with open(path, "rb") as handle:
            for index, raw in enumerate(handle):
                if index >= MAX_METRIC_LINES:
                    bad += 1
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                    step = int(record["step"])
                except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
                    bad += int(bool(raw.strip()))
                    continue
                if not isinstance(record, dict):
                    bad += 1
                    continue
                if step not in by_step:
                    order.append(step)
                    by_step[step] = {}
                by_step[step].update(record)  # a final evaluation is logged as a second record at the last step
    except OSError:
        return [], 0
    return [by_step[s] for s in sorted(order)], bad


def numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_run(path: Path, name: str | None = None) -> RunData:
    path = Path(path)
    run = RunData(path=path, name=name or path.name)
    config_path = path / "config.yaml"
    if config_path.is_file():
        try:
            run.config_text = config_path.read_text(encoding="utf-8")
            loaded = yaml.safe_load(run.config_text)
            run.config = loaded if isinstance(loaded, dict) else None
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            run.config_text = f"(unreadable: {config_path})"
    run.records, run.bad_lines = read_metrics(path / "metrics.jsonl")
    summary = read_json(path / "summary.json")
    if isinstance(summary, dict):
        run.summary = {k: v for k, v in summary.items() if numeric(v)}
    elif run.records:  # a run still going or killed: the last value of each metric
        for record in run.records:
            run.summary.update({k: v for k, v in record.items() if numeric(v) and k not in ("time", "step")})
        run.summary = {"steps": run.records[-1]["step"], **run.summary}
    run.environment = read_environment(path)
    _anchor_paths(run)
    rollouts = path / "rollouts"
    if rollouts.is_dir():
        run.rollout_files = sorted(rollouts.glob("*.jsonl"))
    checkpoints = path / "checkpoints"
    if checkpoints.is_dir():
        run.checkpoints = sum(1 for p in checkpoints.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for candidate in ("merged", "final"):
        if (path / candidate / "config.json").is_file() or (path / candidate / "adapter_config.json").is_file():
            run.final_dir = path / candidate
            break
    return run


def _anchor_paths(run: RunData) -> None:
    """Relative data paths of the config are relative to where training ran (recorded in environment.json): resolve
    them there, so ``mmsft report`` finds the training rows from any folder."""
    cwd = (run.environment or {}).get("cwd")
    data = (run.config or {}).get("data")
    if not cwd or not isinstance(data, dict):
        return
    if isinstance(data.get("train_path"), str) and data["train_path"] and not Path(data["train_path"]).is_absolute():
        data["train_path"] = str(Path(cwd) / data["train_path"])
    if isinstance(data.get("media_roots"), list):
        data["media_roots"] = [str(Path(cwd) / r) if isinstance(r, str) and not Path(r).is_absolute() else r
                               for r in data["media_roots"]]


def is_run(path: Path) -> bool:
    return (path / "metrics.jsonl").is_file() or ((path / "config.yaml").is_file() and (path / "final").is_dir())


def is_pipeline(path: Path) -> bool:
    return (path / "pipeline.yaml").is_file() or (path / "matrix.json").is_file()


def find_runs(root: Path, depth: int = MAX_DEPTH) -> list[Path]:
    """Run folders below ``root`` (not ``root`` itself), breadth first, sorted by path; skips model and log folders."""
    found: list[Path] = []
    frontier = [root]
    for _ in range(depth):
        nxt = []
        for folder in frontier:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            for child in children:
                if child.name in SKIP_DIRS or child.name.startswith("."):
                    continue
                if is_run(child):
                    found.append(child)
                else:
                    nxt.append(child)
        frontier = nxt
    return found


def _media_files(folder: Path, limit: int = 200, max_depth: int = 5) -> list[Path]:
    """GIF / MP4 / WebM files (episode recordings) under ``folder``, sorted; model, checkpoint and data folders are
    not entered."""
    if not folder.is_dir():
        return []
    out: list[Path] = []
    base_depth = len(folder.parts)
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")
                         and len(here.parts) - base_depth < max_depth)
        out += [here / f for f in sorted(files) if f.lower().endswith(MEDIA_SUFFIXES)]
        if len(out) >= limit:
            break
    return sorted(out)[:limit]


def _results(root: Path) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for path in sorted(root.glob("*.json")):
        if path.name in ("matrix.json", "summary.json", "environment.json", "trackers.json", "pipeline_state.json"):
            continue
        data = read_json(path)
        if isinstance(data, (dict, list)):
            out.append((path.name, data))
    for path in sorted(root.glob("*.md")):
        if path.name in ("matrix.md", "README.md"):
            continue
        try:
            out.append((path.name, path.read_text(encoding="utf-8")[:20_000]))
        except (OSError, UnicodeDecodeError):
            continue
    return out


def _eval_files(root: Path) -> list[tuple[str, Path]]:
    """Predictions / completions of evaluations: ``eval/**`` (pipelines) and ``predictions*.jsonl`` at the top
    (studies)."""
    top = [(path.stem, path) for path in sorted(root.glob("predictions*.jsonl"))]
    eval_root = root / "eval"
    if not eval_root.is_dir():
        return top
    files = []
    for name in ("predictions.jsonl", "completions.jsonl"):
        files += sorted(eval_root.rglob(name))
    files.sort()
    return top + [(str(p.parent.relative_to(eval_root)), p) for p in files]


def collect(root: Path) -> ReportData:
    """Read ``root`` (a run, a pipeline or a study folder)."""
    root = Path(root)
    if is_pipeline(root):
        kind = "pipeline"
    elif is_run(root):
        kind = "run"
    else:
        kind = "study"
    data = ReportData(root=root, kind=kind, title=f"{root.resolve().name} · mmsft {kind} report")
    if kind == "run":
        run = read_run(root)
        data.runs = [run]
        data.config_text = run.config_text
        data.media = _media_files(root)
    else:
        source = root / "pipeline.yaml"
        if source.is_file():
            try:
                data.config_text = source.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                data.notes.append(f"{source}: unreadable")
        stage_root = root / "stages"
        stages = sorted((p for p in stage_root.iterdir() if p.is_dir()), key=_stage_key) if stage_root.is_dir() else []
        data.runs = [read_run(p) for p in stages] or [read_run(p, str(p.relative_to(root))) for p in find_runs(root)]
        data.results = _results(root)
        if not data.config_text:
            args = next((d.get("args") for _, d in data.results if isinstance(d, dict) and "args" in d), None)
            if isinstance(args, dict):
                data.config_text = yaml.safe_dump(args, sort_keys=False)
        data.media = _media_files(root)  # evaluation videos, episode GIFs of every run below
    matrix = read_json(root / "matrix.json")
    data.matrix = matrix if isinstance(matrix, dict) and "stages" in matrix and "eval_sets" in matrix else None
    data.figures = sorted(p for ext in ("*.png", "*.jpg", "*.jpeg") for p in root.glob(ext))
    data.eval_files = _eval_files(root)
    for run in data.runs:
        if run.bad_lines:
            data.notes.append(f"{run.path / 'metrics.jsonl'}: {run.bad_lines} unreadable line(s) skipped")
    return data


def _stage_key(path: Path) -> tuple[int, str]:
    head = path.name.split("-", 1)[0]
    return (int(head) if head.isdigit() else 10**9, path.name)
