"""The worker process behind :class:`envs.libero.vector.LiberoVectorEnv`.

Runs in a ``spawn``-context child. The environment is built lazily, on the first ``reset`` command (never in the
parent, so no GL context crosses a process boundary). Protocol over a ``multiprocessing`` pipe, one reply per
command::

    ("reset", {"task_id": int, "init_state": int})  -> ("ok", (obs, info))               | ("error", traceback)
    ("step", action)                                  -> ("ok", (obs, reward, term, trunc, info)) | ("error", ...)
    ("close", None)                                   -> ("ok", None), then the process exits

Any exception is reported as ``("error", formatted traceback)``; the parent ends the episode as a failure and
restarts the worker, so a worker never has to recover a broken simulator itself.
"""

from __future__ import annotations

import importlib
import os
import signal
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


def worker_main(
    conn: Any, env_entry_point: str, env_kwargs: dict[str, Any], env_vars: dict[str, str] | None = None
) -> None:
    """Serve reset/step/close commands for one environment until told to close or the pipe breaks.

    ``env_vars`` are set before the environment (and so mujoco and the GL library) is imported.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and closes workers itself
    os.environ.update(env_vars or {})
    env = None
    try:
        while True:
            try:
                command, payload = conn.recv()
            except (EOFError, OSError):
                return  # parent went away
            if command == "close":
                conn.send(("ok", None))
                return
            try:
                if command == "reset":
                    if env is None:
                        env = resolve_entry_point(env_entry_point)(task_id=payload["task_id"], **env_kwargs)
                    obs, info = env.reset(options=payload)
                    conn.send(("ok", (obs, info)))
                elif command == "step":
                    obs, reward, terminated, truncated, info = env.step(payload)
                    conn.send(("ok", (obs, float(reward), bool(terminated), bool(truncated), info)))
                else:
                    conn.send(("error", f"unknown worker command {command!r}; expected reset/step/close"))
            except Exception:  # noqa: BLE001 - every fault is reported to the parent, which restarts us
                conn.send(("error", traceback.format_exc()))
    finally:
        if env is not None:
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing a broken simulator must not mask the real error
                pass
