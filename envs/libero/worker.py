"""The worker process behind :class:`envs.libero.vector.LiberoVectorEnv`.

Runs in a ``spawn``-context child (or, with ``backend="ray"``, the same :class:`EnvServer` runs in a Ray actor).
The environment is built lazily, on the first ``reset`` command (never in the
parent, so no GL context crosses a process boundary). Protocol over a ``multiprocessing`` pipe, one reply per
command::

    ("reset", {"task_id": int, "init_state": int})  -> ("ok", (obs, info))               | ("error", traceback)
    ("step", action)                                  -> ("ok", (obs, reward, term, trunc, info)) | ("error", ...)
    ("close", None)                                   -> ("ok", None), then the process exits

Any exception is reported as ``("error", formatted traceback)``; the parent ends the episode as a failure and
restarts the worker, so a worker never has to recover a broken simulator itself.
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing
import os
import signal
import sys
import traceback
from typing import Any, Callable


def resolve_entry_point(path: str) -> Callable[..., Any]:
    """Import ``"package.module:attribute"`` and return the attribute."""
    if not isinstance(path, str) or ":" not in path:
        raise ValueError(f"entry point {path!r}; expected 'package.module:callable'")
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ValueError(f"entry point {path!r}: module {module_name!r} has no attribute {attr!r}") from exc


class EnvServer:
    """One environment serving ``reset`` / ``step`` commands: the code behind both backends of
    :class:`envs.libero.vector.LiberoVectorEnv` (a ``spawn`` process via :func:`worker_main`, or a Ray actor in
    :mod:`envs.libero.ray_backend`). The environment is built on the first ``reset``."""

    def __init__(self, env_entry_point: str, env_kwargs: dict[str, Any]) -> None:
        self.env_entry_point = env_entry_point
        self.env_kwargs = dict(env_kwargs)
        self.env: Any = None

    def handle(self, command: str, payload: Any) -> tuple[str, Any]:
        """One reply per command: ``("ok", value)`` or ``("error", formatted traceback)``; never raises."""
        try:
            if command == "reset":
                if self.env is None:
                    self.env = resolve_entry_point(self.env_entry_point)(task_id=payload["task_id"],
                                                                         **self.env_kwargs)
                obs, info = self.env.reset(options=payload)
                return "ok", (obs, info)
            if command == "step":
                obs, reward, terminated, truncated, info = self.env.step(payload)
                return "ok", (obs, float(reward), bool(terminated), bool(truncated), info)
            return "error", f"unknown worker command {command!r}; expected reset/step/close"
        except Exception:  # noqa: BLE001 - every fault is reported to the parent, which restarts us
            return "error", traceback.format_exc()

    def close(self) -> None:
        if self.env is not None:
            try:
                self.env.close()
            except Exception:  # noqa: BLE001 - closing a broken simulator must not mask the real error
                pass
            self.env = None


def die_with_parent() -> None:
    """Linux: have the kernel kill this worker when its parent dies (``PR_SET_PDEATHSIG``). A parent killed by a
    signal never closes its workers, and a worker busy building a simulator (minutes on a loaded CPU, about 1.4 GB)
    would only notice the broken pipe afterwards. The signal follows the parent *thread* that started the worker,
    so create the vector env in a thread that outlives it (the main thread, as mmsft does). No-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    parent = multiprocessing.parent_process()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0 and parent is not None and os.getppid() != parent.pid:
            os._exit(1)  # 1 = PR_SET_PDEATHSIG; the parent died before the request took effect
    except (OSError, AttributeError):
        pass


def worker_main(
    conn: Any, env_entry_point: str, env_kwargs: dict[str, Any], env_vars: dict[str, str] | None = None
) -> None:
    """Serve reset/step/close commands for one environment until told to close or the pipe breaks.

    ``env_vars`` are set before the environment (and so mujoco and the GL library) is imported.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and closes workers itself
    die_with_parent()
    os.environ.update(env_vars or {})
    server = EnvServer(env_entry_point, env_kwargs)
    try:
        while True:
            try:
                command, payload = conn.recv()
            except (EOFError, OSError):
                return  # parent went away
            if command == "close":
                conn.send(("ok", None))
                return
            conn.send(server.handle(command, payload))
    finally:
        server.close()
