"""How :class:`envs.libero.vector.LiberoVectorEnv` talks to one worker: a ``spawn`` process over a pipe
(:class:`ProcessWorker`, the default) or a Ray actor (:class:`envs.libero.ray_backend.RayWorker`).

Both run the same :class:`envs.libero.worker.EnvServer` and expose the same small interface, so the scheduling
and fault accounting of the vector env (timeouts, "crashed"/"stuck" reasons, restarts) are identical:

* ``send(command, payload) -> bool`` — False when the worker can no longer be reached;
* ``poll(timeout) -> bool`` — a reply (or the worker's death) is ready within ``timeout`` seconds;
* ``recv() -> (status, value)`` — the reply; raises :class:`WorkerDied` if the worker died instead;
* ``status() -> str`` — how the worker ended (``exit code 3``), for fault reasons;
* ``request_close()``, ``join(timeout)``, ``kill()``, ``pid``.
"""

from __future__ import annotations

from typing import Any

from envs.libero.worker import worker_main


class WorkerDied(RuntimeError):
    """The worker process (or actor) is gone; the message says how (``exit code N``)."""


class ProcessWorker:
    """One ``multiprocessing`` worker (``spawn`` by default) running :func:`envs.libero.worker.worker_main`."""

    def __init__(self, ctx: Any, index: int, env_entry_point: str, env_kwargs: dict[str, Any],
                 env_vars: dict[str, str]) -> None:
        parent_conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child_conn, env_entry_point, env_kwargs, env_vars),
                                   name=f"libero-worker-{index}", daemon=True)
        self.process.start()
        child_conn.close()
        self.conn: Any = parent_conn

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, command: str, payload: Any) -> bool:
        try:
            self.conn.send((command, payload))
            return True
        except (OSError, BrokenPipeError, ValueError):
            return False

    def poll(self, timeout: float) -> bool:
        try:
            return bool(self.conn.poll(timeout))
        except (OSError, EOFError):
            return True  # the pipe is broken: recv() reports the death

    def recv(self) -> tuple[str, Any]:
        try:
            return self.conn.recv()
        except (EOFError, OSError, ConnectionResetError) as exc:
            self.process.join(1.0)
            raise WorkerDied(self.status()) from exc

    def status(self) -> str:
        return f"exit code {self.process.exitcode}"

    def request_close(self) -> None:
        if self.process.is_alive():
            self.send("close", None)

    def join(self, timeout: float) -> None:
        self.process.join(timeout)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        self.conn.close()
