"""Run-directory logging: ``metrics.jsonl`` (the source of truth), experiment trackers, a rich progress bar and a
closing summary table.

Trackers (``train.report_to``, a comma list of ``tensorboard``, ``wandb``, ``mlflow``, ``trackio``; ``none`` for
only ``metrics.jsonl``) go through accelerate's tracker classes (:mod:`accelerate.tracking`), each fed the same
finite scalars as ``metrics.jsonl``, the resolved config once at the start, and every new file of sample completions
under ``<run>/rollouts/`` as a table. They work offline by default: tensorboard events in ``<run>/tensorboard``,
wandb in offline mode under ``<run>/wandb`` (``WANDB_MODE=online`` to sync live, or ``wandb sync`` later), mlflow in a
file store ``<run>/mlruns`` unless ``MLFLOW_TRACKING_URI`` is set, trackio in its local database. A missing client is
a one-line :class:`ConfigError` at config load naming the extra that installs it (``pip install 'mmsft[wandb]'``).
A tracker that fails while logging is switched off with one warning: a dashboard never stops a run.

A resumed run logs from its checkpoint's step again, so on start the records after that step are removed from
``metrics.jsonl`` (:func:`trim_metrics`; a line cut short by a crash goes too) and tensorboard purges its events
after it: every step appears exactly once. wandb and mlflow continue the same run (its id is kept in
``<run>/trackers.json``); mlflow keeps the re-logged steps as a second point at the same step.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mmsft.config_base import ConfigError
from mmsft.errors import register_user_error

METRICS_FILE = "metrics.jsonl"
TRACKERS_FILE = "trackers.json"
ROLLOUTS_DIR = "rollouts"
#: tracker name -> (module its client provides, the mmsft extra that installs it; None: a core dependency)
TRACKER_CLIENTS: dict[str, tuple[str, str | None]] = {
    "tensorboard": ("tensorboard", None), "wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow"),
    "trackio": ("trackio", "trackio")}
TABLE_ROWS = 32  # completions per rollout file sent to a tracker table


@register_user_error
class TrackerError(RuntimeError):
    """A tracker client failed to start (unreachable server, bad credentials, ...); the message names it."""


def _client_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return module in sys.modules


def parse_report_to(value: str, key: str = "train.report_to", check_installed: bool = True) -> list[str]:
    """``"tensorboard,wandb"`` → ``["tensorboard", "wandb"]``; ``none`` or empty → ``[]``.

    Raises :class:`ConfigError` naming ``key`` for an unknown tracker (with the nearest name) and, with
    ``check_installed``, for a tracker whose client is not installed (naming the extra that installs it)."""
    names: list[str] = []
    for raw in str(value).split(","):
        name = raw.strip().lower()
        if not name or name == "none" or name in names:
            continue
        if name not in TRACKER_CLIENTS:
            close = difflib.get_close_matches(name, list(TRACKER_CLIENTS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"config key {key!r}: unknown tracker {name!r}.{hint} Expected a comma list of "
                              f"{', '.join(TRACKER_CLIENTS)} (or none)")
        module, extra = TRACKER_CLIENTS[name]
        if check_installed and not _client_installed(module):
            install = f"pip install 'mmsft[{extra}]'" if extra else f"pip install {module}"
            raise ConfigError(f"config key {key!r}: tracker {name!r} needs the {module} client, which is not "
                              f"installed: {install}")
        names.append(name)
    return names


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


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a record: what every tracker receives."""
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-4}}`` → ``{"optim.lr": 1e-4}``; lists become JSON strings (trackers take flat params)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flatten_config(value, f"{prefix}{key}."))
        elif isinstance(value, (list, tuple, dict)):
            out[f"{prefix}{key}"] = json.dumps(value, default=str)
        else:
            out[f"{prefix}{key}"] = value
    return out


def _cell(value: Any) -> Any:
    """A table cell every tracker accepts: scalars as they are, anything nested as (clipped) JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value[:4000] if isinstance(value, str) else value
    return json.dumps(value, default=str, ensure_ascii=False)[:4000]


def _warn(message: str) -> None:
    print(f"mmsft: warning: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------------- trackers
class _Tracker:
    """One accelerate tracker plus what accelerate leaves to us: config text, tables, resume ids."""

    name = ""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker

    def run_id(self) -> str | None:
        return None

    def log(self, values: dict[str, float], step: int) -> None:
        self.tracker.log(values, step=step)

    def config(self, config: dict[str, Any], text: str) -> None:
        self.tracker.store_init_configuration(flatten_config(config))

    def table(self, name: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        """Sample completions; a tracker without tables ignores them."""

    def finish(self) -> None:
        self.tracker.finish()


class _TensorBoard(_Tracker):
    name = "tensorboard"

    def config(self, config: dict[str, Any], text: str) -> None:
        self.tracker.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)

    def table(self, name: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        def cell(value: Any) -> str:
            return str(value).replace("|", "\\|").replace("\n", " ")[:500]

        lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
        self.tracker.writer.add_text(name, "\n".join(lines), step)


class _WandB(_Tracker):
    name = "wandb"

    def run_id(self) -> str | None:
        return self.tracker.run.id

    def config(self, config: dict[str, Any], text: str) -> None:
        pass  # given to wandb.init(config=...), nested

    def table(self, name: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        self.tracker.log_table(name, columns=columns, data=rows, step=step)


_MLFLOW_BAD = re.compile(r"[^\w./\- :]")


class _MLflow(_Tracker):
    name = "mlflow"

    def run_id(self) -> str | None:
        return self.tracker.active_run.info.run_id

    def log(self, values: dict[str, float], step: int) -> None:
        # mlflow names allow letters, digits, _ - . / space and colon: "success_rate/size=3" → "success_rate/size_3"
        self.tracker.log({_MLFLOW_BAD.sub("_", k): v for k, v in values.items()}, step=step)

    def config(self, config: dict[str, Any], text: str) -> None:
        import mlflow

        self.tracker.store_init_configuration({_MLFLOW_BAD.sub("_", k): v for k, v in flatten_config(config).items()})
        mlflow.log_text(text, "config.yaml")

    def table(self, name: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        import mlflow

        data = {c: [row[i] for row in rows] for i, c in enumerate(columns)}
        mlflow.log_table(data=data, artifact_file=f"{name}.json")


class _Trackio(_Tracker):
    name = "trackio"

    def config(self, config: dict[str, Any], text: str) -> None:
        pass  # given to trackio.init(config=...)

    def table(self, name: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        import trackio

        if hasattr(trackio, "Table"):
            self.tracker.log({name: trackio.Table(columns=columns, data=rows)}, step=step)


_LOCAL_MLFLOW: dict[str, str] = {}  # the file store this process pointed mlflow at last


def _make_tracker(name: str, run_dir: Path, start_step: int, config: dict[str, Any], ids: dict[str, str]) -> _Tracker:
    """Build accelerate's tracker for ``name`` with the offline defaults of the module doc (not started yet)."""
    from accelerate import PartialState, tracking

    PartialState()  # accelerate's tracker logging needs its state; the trainer's Accelerator made it already

    run_name = run_dir.resolve().name
    if name == "tensorboard":
        # purge_step: events at steps > start_step from before a crash are hidden (they are logged again).
        tracker = tracking.TensorBoardTracker("", str(run_dir / "tensorboard"), purge_step=start_step + 1)
        wrapper: _Tracker = _TensorBoard(tracker)
    elif name == "wandb":
        kwargs: dict[str, Any] = {"dir": str(run_dir), "name": run_name, "config": config, "resume": "allow",
                                  "id": ids.get("wandb")}
        if "WANDB_MODE" not in os.environ:
            kwargs["mode"] = "offline"
        tracker = tracking.WandBTracker(os.environ.get("WANDB_PROJECT", "mmsft"), **kwargs)
        wrapper = _WandB(tracker)
    elif name == "mlflow":
        import mlflow

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri or uri == _LOCAL_MLFLOW.get("uri"):  # set_tracking_uri exports the variable: ours is not the user's
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the local, server-free store
            _LOCAL_MLFLOW["uri"] = (run_dir / "mlruns").resolve().as_uri()
            mlflow.set_tracking_uri(_LOCAL_MLFLOW["uri"])
        tracker = tracking.MLflowTracker(experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", "mmsft"),
                                         run_id=ids.get("mlflow"), run_name=run_name)
        wrapper = _MLflow(tracker)
    else:
        tracker = tracking.TrackioTracker(os.environ.get("TRACKIO_PROJECT", "mmsft"), name=run_name, config=config)
        wrapper = _Trackio(tracker)
    return wrapper


# ---------------------------------------------------------------------------------------------------------- logger
class MetricsLogger:
    """Writes each record to ``metrics.jsonl`` and routes its scalars to the configured trackers (main process)."""

    def __init__(self, run_dir: Path, total_steps: int, start_step: int = 0, tensorboard: bool = True,
                 progress: bool = True, enabled: bool = True, report_to: str = "tensorboard",
                 config: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.history: list[dict[str, Any]] = []
        self.trackers: list[_Tracker] = []
        rollouts = self.run_dir / ROLLOUTS_DIR  # files already there were sent before a resume (or are stale)
        self._seen_rollouts = {p.name for p in rollouts.glob("*.jsonl")} if rollouts.is_dir() else set()
        if enabled:
            trim_metrics(self.run_dir, start_step)
            self._write_environment(config)
        self._file = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") if enabled else None
        if enabled:
            names = [n for n in parse_report_to(report_to) if tensorboard or n != "tensorboard"]
            self._start_trackers(names, start_step, config or {})
        self._progress = None
        if enabled and progress:
            self._progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                                      TimeRemainingColumn(), console=self.console, transient=False)
            self._task = self._progress.add_task("train", total=total_steps, completed=start_step, info="")
            self._progress.start()
        self._t0 = time.perf_counter()

    def _write_environment(self, config: dict[str, Any] | None) -> None:
        from mmsft.report.environment import write_environment

        try:
            write_environment(self.run_dir, config)
        except Exception as exc:  # noqa: BLE001 — a missing environment record never stops a run
            _warn(f"could not record the environment in {self.run_dir}: {type(exc).__name__}: {exc}")

    def _start_trackers(self, names: list[str], start_step: int, config: dict[str, Any]) -> None:
        import yaml

        path = self.run_dir / TRACKERS_FILE
        try:
            ids = json.loads(path.read_text()) if start_step > 0 and path.is_file() else {}
        except (OSError, ValueError):
            ids = {}
        ids = ids if isinstance(ids, dict) else {}
        text = yaml.safe_dump(config, sort_keys=False)
        for name in names:
            tracker = None
            try:
                tracker = _make_tracker(name, self.run_dir, start_step, config, ids)
                tracker.tracker.start()
                if start_step == 0:
                    tracker.config(config, text)
            except Exception as exc:  # noqa: BLE001 — any client failure at start is reported on one line
                for started in [*self.trackers, *([tracker] if tracker is not None else [])]:
                    try:
                        started.finish()
                    except Exception:  # noqa: BLE001 — it may not have started at all
                        pass
                raise TrackerError(f"train.report_to: tracker {name!r} failed to start ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}); fix it or leave {name} out of "
                                   "train.report_to") from exc
            self.trackers.append(tracker)
            run_id = tracker.run_id()
            if run_id:
                ids[name] = run_id
        if any(t.run_id() for t in self.trackers):
            path.write_text(json.dumps(ids, indent=2) + "\n")

    def _each_tracker(self, what: str, call: Any) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as exc:  # noqa: BLE001 — a dashboard never stops a run; metrics.jsonl has everything
                _warn(f"tracker {tracker.name} failed to {what} ({type(exc).__name__}: {exc}); it is switched off "
                      f"for the rest of the run (metrics.jsonl is complete)")
                self.trackers.remove(tracker)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.perf_counter() - self._t0, 3), **metrics}
        self.history.append(record)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.trackers:
            values = scalars(metrics)
            self._each_tracker("log metrics", lambda t: t.log(values, step))
            self._log_rollouts(step)
        if self._progress is not None:
            info = " ".join(f"{k.split('/')[-1]}={metrics[k]:.4g}" for k in ("train/loss", "train/tokens_per_s")
                            if k in metrics)
            self._progress.update(self._task, completed=step, info=info)

    def _log_rollouts(self, step: int) -> None:
        """Send every rollout file written since the last call to the trackers as a table."""
        folder = self.run_dir / ROLLOUTS_DIR
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.jsonl")):
            if path.name in self._seen_rollouts:
                continue
            self._seen_rollouts.add(path.name)
            rows = []
            try:
                for line in path.read_text(encoding="utf-8").splitlines()[:TABLE_ROWS]:
                    row = json.loads(line)
                    if isinstance(row, dict):
                        rows.append(row)
            except (OSError, ValueError):
                continue
            columns = list(dict.fromkeys(k for row in rows for k in row))
            if not rows or not columns:
                continue
            data = [[_cell(row.get(c)) for c in columns] for row in rows]
            name = f"rollouts/{path.stem}"
            self._each_tracker("log a table", lambda t: t.table(name, columns, data, step))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._each_tracker("finish", lambda t: t.finish())
        self.trackers = []
        if self._file is not None:
            self._file.close()
            self._file = None

    def summary_table(self, title: str, rows: dict[str, Any]) -> None:
        if not self.enabled:
            return
        table = Table(title=title)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in rows.items():
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        self.console.print(table)
