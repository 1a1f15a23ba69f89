"""Run model output (SQL, Python) in a separate, limited process — never in the trainer process.

Each job is one ``python -I sandbox_worker.py`` process (:mod:`mmsft.rewards.sandbox_worker`) started in its own
session (process group) with:

* ``RLIMIT_AS`` (address space; default 512 MiB), ``RLIMIT_CPU`` (timeout + 1 s), ``RLIMIT_FSIZE`` = 0 (no file
  content can be written), ``RLIMIT_CORE`` = 0, ``RLIMIT_NOFILE`` = 64, and ``RLIMIT_NPROC`` = 0 (no new processes;
  not enforced for root, where the worker's audit hook refuses fork/exec/spawn instead);
* a wall-clock timeout after which the whole process group is killed (SIGKILL), so stray children die too;
* no network: a fresh, empty network namespace (``unshare -n``; ``unshare -rn`` when not root) where the host allows
  it, and in every case the worker's audit hook refusing sockets;
* an audit hook refusing process creation, native-library loading, file deletion and opening files for writing;
* for SQL, a read-only copy of the database (see :mod:`mmsft.rewards.sql`), opened read-only with ATTACH refused.

Every failure is a result with a reason (``timeout``, ``memory``, ``refused``, ``crashed``, ``sql_error``,
``too_many_rows``, ``output_too_large``, ``error``), counted in :data:`STATS` — a reward scores it 0.
This is defence in depth for reward computation, not a security boundary against native-code exploits.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("sandbox_worker.py")
MAX_OUTPUT_BYTES = 4 * 2 ** 20
STATS: collections.Counter = collections.Counter()  # reason -> count (and "jobs")
_STATS_LOCK = threading.Lock()
_NET_PREFIX: list[str] | None = None


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_bytes: int = 512 * 2 ** 20


def count_reason(reason: str) -> None:
    """Count one outcome in :data:`STATS` (thread-safe)."""
    with _STATS_LOCK:
        STATS[reason] += 1


def network_prefix() -> list[str]:
    """The command prefix that gives the worker an empty network namespace, or [] where the host forbids it."""
    global _NET_PREFIX
    if _NET_PREFIX is None:
        _NET_PREFIX = []
        tool = shutil.which("unshare")
        if tool:
            candidate = [tool, "-n"] if os.geteuid() == 0 else [tool, "-r", "-n"]
            try:
                probe = subprocess.run([*candidate, "true"], capture_output=True, timeout=5)
                if probe.returncode == 0:
                    _NET_PREFIX = candidate
            except (OSError, subprocess.SubprocessError):
                pass
    return _NET_PREFIX


def _limit(limits: Limits):
    def apply() -> None:
        cpu = int(limits.timeout_s) + 1
        for name, soft, hard in (("RLIMIT_AS", limits.memory_bytes, limits.memory_bytes), ("RLIMIT_CPU", cpu, cpu + 1),
                                 ("RLIMIT_FSIZE", 0, 0), ("RLIMIT_CORE", 0, 0), ("RLIMIT_NOFILE", 64, 64),
                                 ("RLIMIT_NPROC", 0, 0)):
            kind = getattr(resource, name, None)
            if kind is None:
                continue
            try:
                resource.setrlimit(kind, (soft, hard))
            except (ValueError, OSError):
                pass

    return apply


def run_job(job: dict[str, Any], limits: Limits = Limits()) -> dict[str, Any]:
    """Run one worker job under ``limits``; always returns ``{"ok": bool, ...}`` (with ``reason`` when not ok)."""
    count_reason("jobs")
    command = [*network_prefix(), sys.executable, "-I", str(WORKER)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=env, cwd="/", start_new_session=True, preexec_fn=_limit(limits))
    except OSError as exc:
        count_reason("crashed")
        return {"ok": False, "reason": "crashed", "detail": f"could not start the sandbox: {exc}"}
    started = time.monotonic()
    try:
        out, _ = process.communicate(json.dumps({**job, "timeout": limits.timeout_s}).encode(),
                                     timeout=limits.timeout_s + 2.0)
    except subprocess.TimeoutExpired:
        _kill(process)
        count_reason("timeout")
        return {"ok": False, "reason": "timeout", "detail": f"no answer within {limits.timeout_s + 2.0:.1f} s"}
    finally:
        _kill(process)
    if len(out) > MAX_OUTPUT_BYTES:
        count_reason("output_too_large")
        return {"ok": False, "reason": "output_too_large", "detail": f"{len(out)} bytes"}
    try:
        result = json.loads(out.decode("utf-8")) if out else None
    except (UnicodeDecodeError, ValueError):
        result = None
    if not isinstance(result, dict) or "ok" not in result:
        if process.returncode == -signal.SIGXCPU or time.monotonic() - started >= limits.timeout_s:
            reason = "timeout"  # the CPU limit (an endless loop) or the wall clock
        else:
            reason = "memory" if process.returncode in (-signal.SIGKILL, -signal.SIGSEGV) else "crashed"
        count_reason(reason)
        return {"ok": False, "reason": reason, "detail": f"worker exited with {process.returncode}"}
    if not result["ok"]:
        count_reason(str(result.get("reason", "error")))
    return result


def _kill(process: subprocess.Popen) -> None:
    """Kill the worker's whole process group (children it managed to start included)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_python(code: str, limits: Limits = Limits()) -> dict[str, Any]:
    """Execute model-written Python in the sandbox; ``{"ok", "stdout"}`` or ``{"ok": False, "reason", ...}``."""
    return run_job({"kind": "python", "code": code}, limits)


def run_sql(db_path: str | Path, sql: str, limits: Limits = Limits(), max_rows: int = 10_000) -> dict[str, Any]:
    """Execute one SQL statement on a database file, read-only, in the sandbox; ``{"ok", "rows"}`` or a reason."""
    return run_job({"kind": "sql", "db": str(db_path), "sql": sql, "max_rows": max_rows}, limits)
