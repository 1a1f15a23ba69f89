"""Sandbox worker: runs ONE job from a JSON object on stdin and prints one JSON object on stdout. Standard library
only; started by :mod:`mmsft.rewards.sandbox` as ``python -I <this file>`` in a fresh process group, under resource
limits, with no network namespace access where the host allows it.

Before touching the job it installs an audit hook (PEP 578) that refuses process creation (fork, exec, system,
spawn, subprocess), sockets, native-library loading (ctypes), file deletion/renaming/permission changes and opening
files for writing. Jobs:

* ``{"kind": "sql", "db": PATH, "sql": TEXT, "max_rows": N, "timeout": S}`` — the database is opened read-only
  (``mode=ro`` URI, ``query_only``), ATTACH/DETACH and extension loading are refused by an authorizer, a progress
  handler aborts the query at the deadline; returns the rows (values as JSON scalars) or an error reason.
* ``{"kind": "python", "code": TEXT, "timeout": S}`` — ``exec`` of the code with its stdout captured (for rewards that
  run model-written code and for the containment tests).
"""

from __future__ import annotations

import io
import json
import sys
import time

_BLOCKED_PREFIXES = ("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                     "subprocess.", "socket.", "ctypes.", "os.remove", "os.unlink", "os.rename", "os.rmdir",
                     "os.chmod", "os.chown", "os.truncate", "os.link", "os.symlink", "os.kill", "os.killpg",
                     "shutil.rmtree", "pty.", "winreg.", "webbrowser.", "urllib.", "http.", "ftplib.", "smtplib.",
                     "sqlite3.enable_load_extension", "sqlite3.load_extension")
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND


class Refused(RuntimeError):
    """An operation the sandbox does not allow."""


def _hook(event: str, args: tuple) -> None:
    if event.startswith(_BLOCKED_PREFIXES):
        raise Refused(f"refused by the sandbox: {event}")
    if event == "open" and len(args) >= 3:
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & _WRITE_FLAGS):
            raise Refused("refused by the sandbox: opening a file for writing")


def _scalar(value: object) -> object:
    if value is None or isinstance(value, (int, float, str)):
        return value if not isinstance(value, int) or abs(value) < 2 ** 53 else str(value)
    if isinstance(value, bytes):
        return value[:256].hex()
    return str(value)[:256]


def _sql(job: dict) -> dict:
    import sqlite3

    deadline = time.monotonic() + float(job.get("timeout", 5.0))
    uri = "file:" + job["db"] + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)

    def authorizer(action: int, *_: object) -> int:
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(authorizer)
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
    max_rows = int(job.get("max_rows", 10_000))
    try:
        cursor = conn.execute(job["sql"])
        rows = cursor.fetchmany(max_rows + 1)
    except sqlite3.OperationalError as exc:
        reason = "timeout" if "interrupted" in str(exc) else "sql_error"
        return {"ok": False, "reason": reason, "detail": str(exc)[:200]}
    except (sqlite3.Error, ValueError, OverflowError) as exc:
        return {"ok": False, "reason": "sql_error", "detail": f"{type(exc).__name__}: {str(exc)[:200]}"}
    if len(rows) > max_rows:
        return {"ok": False, "reason": "too_many_rows", "detail": f"more than {max_rows} rows"}
    return {"ok": True, "rows": [[_scalar(v) for v in row] for row in rows]}


def _python(job: dict) -> dict:
    captured = io.StringIO()
    stdout = sys.stdout
    sys.stdout = captured
    try:
        exec(compile(job["code"], "<model output>", "exec"), {"__name__": "__sandbox__"})  # noqa: S102 - sandboxed
    except MemoryError:
        return {"ok": False, "reason": "memory", "detail": "MemoryError"}
    except Refused as exc:
        return {"ok": False, "reason": "refused", "detail": str(exc)[:200]}
    except RecursionError:
        return {"ok": False, "reason": "error", "detail": "RecursionError"}
    except BaseException as exc:  # noqa: BLE001 - the job's own failure, reported
        return {"ok": False, "reason": "error", "detail": f"{type(exc).__name__}: {str(exc)[:200]}"}
    finally:
        sys.stdout = stdout
    return {"ok": True, "stdout": captured.getvalue()[:65_536]}


def main() -> None:
    job = json.loads(sys.stdin.read())
    sys.addaudithook(_hook)
    try:
        result = _sql(job) if job.get("kind") == "sql" else _python(job)
    except MemoryError:
        result = {"ok": False, "reason": "memory", "detail": "MemoryError"}
    except Refused as exc:
        result = {"ok": False, "reason": "refused", "detail": str(exc)[:200]}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
