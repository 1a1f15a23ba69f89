"""Ray backend of :class:`envs.libero.vector.LiberoVectorEnv` (``backend="ray"``, ``pip install mmsft[ray]``).

Each worker is a Ray actor running the same :class:`envs.libero.worker.EnvServer` as a ``spawn`` process worker, so
an env fleet can span several machines (the actors are placed by Ray: one CPU each by default, more with
``ray_options``). The vector env keeps the same scheduling and fault accounting: a step or reset that does not
return within its timeout kills the actor ("stuck"), an actor that dies ("crashed", e.g. its node or process went
away) ends that episode as a failure with the reason recorded, and a fresh actor takes the slot. Ray's own actor
restarts are switched off (``max_restarts=0``) so every fault is counted once, by the vector env.

This is the placement RLinf (arXiv 2510.06710) and veRL-based SimpleVLA-RL (arXiv 2509.09674) use for rollout
workers. The cluster is the one ``ray.init()`` connects to: ``RAY_ADDRESS`` if set, else a new local instance;
call ``ray.init(...)`` yourself first for other settings. Every node needs mmsft and the env's dependencies
installed (the ``[libero]`` extra for LIBERO).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from envs.libero.transport import WorkerDied
from envs.libero.worker import EnvServer


def import_ray() -> Any:
    """``import ray`` with an install hint when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("LiberoVectorEnv(backend='ray') needs Ray: pip install 'mmsft[ray]'") from exc
    return ray


class EnvActor:
    """The Ray actor: an :class:`EnvServer` in the actor's process (env variables set before the env's import)."""

    def __init__(self, env_entry_point: str, env_kwargs: dict[str, Any], env_vars: dict[str, str]) -> None:
        os.environ.update(env_vars)
        self.server = EnvServer(env_entry_point, env_kwargs)

    def pid(self) -> int:
        return os.getpid()

    def call(self, command: str, payload: Any) -> tuple[str, Any]:
        return self.server.handle(command, payload)

    def close(self) -> None:
        self.server.close()


@lru_cache(maxsize=1)
def _remote_actor_class() -> Any:
    return import_ray().remote(EnvActor)


class RayWorker:
    """One slot's Ray actor behind the :mod:`envs.libero.transport` interface."""

    def __init__(self, index: int, env_entry_point: str, env_kwargs: dict[str, Any], env_vars: dict[str, str],
                 ray_options: dict[str, Any] | None = None) -> None:
        self.ray = import_ray()
        if not self.ray.is_initialized():
            try:
                self.ray.init(log_to_driver=False)
            except Exception as exc:  # noqa: BLE001 - ray raises bare Exception on a start-up timeout
                raise RuntimeError(f"LiberoVectorEnv(backend='ray'): could not start or reach a Ray instance "
                                   f"({_first_line(exc)}); set RAY_ADDRESS to a running cluster or call "
                                   "ray.init(...) first") from exc
        options = {"num_cpus": 1, **(ray_options or {}), "max_restarts": 0, "max_task_retries": 0}
        self.index = index
        self.actor = _remote_actor_class().options(**options).remote(env_entry_point, env_kwargs, env_vars)
        self._pid_ref: Any = self.actor.pid.remote()
        self._pid: int | None = None
        self._ref: Any = None
        self._close_ref: Any = None
        self._death = ""

    @property
    def pid(self) -> int | None:
        """The actor's process id (on its node); waits up to 60 s for the actor to start."""
        if self._pid is None and self._pid_ref is not None:
            ready, _ = self.ray.wait([self._pid_ref], timeout=60.0)
            if ready:
                try:
                    self._pid = int(self.ray.get(self._pid_ref))
                except self.ray.exceptions.RayError:
                    self._pid_ref = None
        return self._pid

    def send(self, command: str, payload: Any) -> bool:
        try:
            self._ref = self.actor.call.remote(command, payload)
            return True
        except self.ray.exceptions.RayError as exc:
            self._death = _first_line(exc)
            return False

    def poll(self, timeout: float) -> bool:
        ready, _ = self.ray.wait([self._ref], timeout=max(0.0, timeout))
        return bool(ready)

    def recv(self) -> tuple[str, Any]:
        ref, self._ref = self._ref, None
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # RayActorError / ActorDiedError, lost node, ...
            self._death = _first_line(exc)
            raise WorkerDied(self.status()) from exc

    def status(self) -> str:
        return f"Ray actor {self._death or 'gone'}"

    def request_close(self) -> None:
        try:
            self._close_ref = self.actor.close.remote()
        except self.ray.exceptions.RayError:
            self._close_ref = None

    def join(self, timeout: float) -> None:
        if self._close_ref is not None:
            self.ray.wait([self._close_ref], timeout=max(0.0, timeout))

    def kill(self) -> None:
        try:
            self.ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - the actor (or the whole Ray instance) may already be gone
            pass


def _first_line(exc: BaseException) -> str:
    """A compact death reason: the exception type and the first line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
