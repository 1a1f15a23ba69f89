"""Episode-scheduling vector env over N worker processes, with fault isolation.

:class:`LiberoVectorEnv` runs one environment per ``spawn``-context worker (built lazily inside the worker). You
submit episodes (:class:`EpisodeSpec`: task id + init state, optionally a GRPO group id), then drive all slots
with batched ``step`` calls; a slot whose episode ends is reset at once to the next pending episode
(same-step auto-reset), and every submitted episode produces exactly one :class:`EpisodeResult`.

Faults never hang the caller or lose an episode: a simulator exception (or NaN state, which ``LiberoEnv`` raises
as an error), a crashed worker, or a worker that does not answer within ``step_timeout`` / ``reset_timeout``
ends that episode as a failure with the reason recorded; the worker is killed if needed and restarted.

Observations travel through pipes (pickled), never shared memory, so the instruction text arrives intact.
With ``backend="ray"`` (``pip install mmsft[ray]``) the workers are Ray actors running the same worker code
(:mod:`envs.libero.ray_backend`), placed anywhere in the Ray cluster, with the same fault accounting.
Per-slot return values are lists (``None`` for an idle slot); use :func:`stack_observations` to batch them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from envs.libero.transport import ProcessWorker, WorkerDied

DEFAULT_ENV = "envs.libero.env:LiberoEnv"
BACKENDS = ("process", "ray")


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: task, stored init state and an optional group id (GRPO groups repeat an init state)."""

    task_id: int
    init_state: int
    group: int | None = None


@dataclass
class EpisodeResult:
    """Outcome of one submitted episode. ``reason`` is ``success``, ``step_limit`` or ``fault: ...``."""

    episode_id: int
    task_id: int
    init_state: int
    group: int | None
    success: bool
    steps: int
    total_reward: float
    reason: str
    worker: int
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grpo_groups(pairs: Iterable[tuple[int, int]], group_size: int) -> list[EpisodeSpec]:
    """Repeat each (task_id, init_state) ``group_size`` times, one group id per pair."""
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size={group_size!r}; expected a positive int")
    specs: list[EpisodeSpec] = []
    for gid, (task_id, init_state) in enumerate(pairs):
        specs.extend(EpisodeSpec(int(task_id), int(init_state), gid) for _ in range(group_size))
    return specs


def stack_observations(observations: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Batch per-slot observations of active slots: images (B,H,W,3) per camera, proprio (B,8), instructions."""
    live = [o for o in observations if o is not None]
    if not live:
        raise ValueError("stack_observations: no active slot (every observation is None)")
    batch: dict[str, Any] = {
        "proprio": np.stack([o["proprio"] for o in live]),
        "instruction": [o["instruction"] for o in live],
    }
    if "images" in live[0]:
        batch["images"] = {cam: np.stack([o["images"][cam] for o in live]) for cam in live[0]["images"]}
    return batch


@dataclass
class _Slot:
    index: int
    worker: Any = None  # a ProcessWorker or RayWorker (envs.libero.transport interface)
    spec: EpisodeSpec | None = None
    episode_id: int = -1
    steps: int = 0
    total_reward: float = 0.0
    started: float = 0.0
    pending_reply: bool = False
    last_info: dict[str, Any] = field(default_factory=dict)


class LiberoVectorEnv:
    """N workers stepping submitted episodes; see the module docstring.

    Args:
        num_workers: worker processes (one environment each).
        env_kwargs: keyword arguments for the environment (``LiberoEnv``: suite, image_size, cameras, render, ...);
            ``task_id`` comes from each episode.
        env_entry_point: ``"module:callable"`` building the environment inside the worker; it is called as
            ``fn(task_id=..., **env_kwargs)`` and must return a gymnasium env whose ``reset`` takes
            ``options={"task_id", "init_state"}``.
        step_timeout: seconds a worker may take for one step before it is killed (episode fails).
        reset_timeout: seconds for a reset, which includes building the simulator (4-30 s on a busy CPU).
        worker_env: environment variables set in each worker before the simulator is imported. By default,
            with more than one worker, ``LP_NUM_THREADS=1`` (unless set by the user): Mesa's CPU renderer
            otherwise starts one render thread per core in every worker, and N workers oversubscribe the CPU.
        backend: ``"process"`` (default: ``spawn`` processes on this machine) or ``"ray"`` (Ray actors in the
            cluster ``ray.init()`` connects to; see :mod:`envs.libero.ray_backend`).
        ray_options: Ray actor options for ``backend="ray"`` (default ``{"num_cpus": 1}``; e.g. ``resources``,
            ``scheduling_strategy``, ``runtime_env``).
    """

    def __init__(
        self,
        num_workers: int,
        env_kwargs: dict[str, Any] | None = None,
        env_entry_point: str = DEFAULT_ENV,
        step_timeout: float = 120.0,
        reset_timeout: float = 600.0,
        start_method: str = "spawn",
        worker_env: dict[str, str] | None = None,
        backend: str = "process",
        ray_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(f"num_workers={num_workers!r}; expected a positive int")
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}; expected one of {BACKENDS}")
        if ray_options is not None and backend != "ray":
            raise ValueError(f"ray_options are for backend='ray' (got backend={backend!r})")
        if backend == "ray":
            from envs.libero.ray_backend import import_ray

            import_ray()  # fail here, with the install hint, before anything starts
        self.backend = backend
        self.ray_options = dict(ray_options or {})
        for name, value in (("step_timeout", step_timeout), ("reset_timeout", reset_timeout)):
            if not value > 0:
                raise ValueError(f"{name}={value!r}; expected a positive number of seconds")
        self.env_kwargs = dict(env_kwargs or {})
        if "task_id" in self.env_kwargs:
            raise ValueError("env_kwargs must not contain 'task_id': each EpisodeSpec names its task")
        self.env_entry_point = env_entry_point
        self.step_timeout = float(step_timeout)
        self.reset_timeout = float(reset_timeout)
        if worker_env is None:
            worker_env = {}
            if num_workers > 1 and "LP_NUM_THREADS" not in os.environ:
                worker_env["LP_NUM_THREADS"] = "1"
        self.worker_env = {str(k): str(v) for k, v in worker_env.items()}
        self._ctx = mp.get_context(start_method)
        self._slots = [_Slot(i) for i in range(num_workers)]
        self._pending: deque[tuple[int, EpisodeSpec]] = deque()
        self._next_episode_id = 0
        self.results: list[EpisodeResult] = []
        self.restarts = 0
        self._in_flight: dict[int, float] = {}  # slot -> reply deadline of a step sent by step_async
        self._closed = False
        for slot in self._slots:
            self._start(slot)

    # ------------------------------------------------------------------ public API
    @property
    def num_workers(self) -> int:
        return len(self._slots)

    @property
    def active(self) -> np.ndarray:
        """Boolean mask of slots that are running an episode."""
        return np.array([slot.spec is not None for slot in self._slots])

    @property
    def episode_ids(self) -> list[int]:
        """Episode id running on each slot (-1 for an idle slot)."""
        return [slot.episode_id if slot.spec is not None else -1 for slot in self._slots]

    @property
    def worker_pids(self) -> list[int | None]:
        """Process id of each slot's worker (for monitoring; changes when a worker is restarted). With the Ray
        backend, the actor's process id on its node."""
        return [slot.worker.pid if slot.worker is not None else None for slot in self._slots]

    @property
    def num_pending(self) -> int:
        return len(self._pending)

    @property
    def done(self) -> bool:
        """True when every submitted episode has a result."""
        return not self._pending and not self.active.any()

    def submit(self, specs: Iterable[EpisodeSpec]) -> list[int]:
        """Queue episodes; returns their episode ids (results carry the same id)."""
        ids = []
        for spec in specs:
            if not isinstance(spec, EpisodeSpec):
                raise TypeError(f"submit() takes EpisodeSpec items, got {type(spec).__name__}: {spec!r}")
            self._pending.append((self._next_episode_id, spec))
            ids.append(self._next_episode_id)
            self._next_episode_id += 1
        return ids

    def reset(self) -> tuple[list[dict[str, Any] | None], list[dict[str, Any]]]:
        """Start pending episodes on every idle slot. Returns per-slot (obs, info); idle slots give (None, {})."""
        self._check_open()
        self._check_landed("reset")
        obs: list[dict[str, Any] | None] = [None] * self.num_workers
        infos: list[dict[str, Any]] = [{} for _ in self._slots]
        idle = [slot for slot in self._slots if slot.spec is None]
        self._start_episodes(idle, obs, infos)
        return obs, infos

    def step(
        self, actions: Sequence[Any]
    ) -> tuple[list[dict[str, Any] | None], np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every active slot with its action (entries for idle slots are ignored).

        A slot whose episode ends reports ``info["episode_result"]`` (an :class:`EpisodeResult`) and
        ``info["final_obs"]``; it is then reset to the next pending episode in the same call, so its returned
        observation (and ``info``) belong to the new episode, or are ``None``/``{}`` if nothing is pending.
        """
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: Sequence[Any], slots: Sequence[int] | None = None) -> list[int]:
        """Send a step to the running slots among ``slots`` (default: every running slot) and return at once;
        :meth:`step_wait` collects the replies. The simulators step while the caller computes, e.g. the next
        actions of the other slots (overlapping model and simulator). Returns the slots that were sent a step."""
        self._check_open()
        if len(actions) != self.num_workers:
            raise ValueError(f"step() got {len(actions)} actions; expected one per worker ({self.num_workers})")
        wanted = range(self.num_workers) if slots is None else slots
        targets = [self._slots[i] for i in wanted if self._slots[i].spec is not None]
        busy = [slot.index for slot in targets if slot.index in self._in_flight]
        if busy:
            raise RuntimeError(f"step_async: slots {busy} are still stepping; call step_wait first")
        now = time.monotonic()
        for slot in targets:
            self._send(slot, "step", np.asarray(actions[slot.index], dtype=np.float32))
            self._in_flight[slot.index] = now + self.step_timeout
        return [slot.index for slot in targets]

    def step_wait(
        self, slots: Sequence[int] | None = None
    ) -> tuple[list[dict[str, Any] | None], np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Collect the steps sent by :meth:`step_async` to ``slots`` (default: every slot in flight), with the
        results of :meth:`step` for those slots (other slots: ``None`` / 0 / ``{}``); ended episodes are reset to
        pending ones as in :meth:`step`."""
        self._check_open()
        n = self.num_workers
        obs: list[dict[str, Any] | None] = [None] * n
        rewards = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(n)]
        wanted = sorted(self._in_flight) if slots is None else [i for i in slots if i in self._in_flight]
        ended: list[_Slot] = []
        for i in wanted:
            slot = self._slots[i]
            status, reply = self._receive(slot, self._in_flight.pop(i), self.step_timeout)
            if status != "ok":
                infos[i] = {"episode_result": self._finish(slot, False, f"fault: {reply}"), "final_obs": None}
                terminated[i] = True
                self._restart(slot)
                ended.append(slot)
                continue
            o, reward, term, trunc, info = reply
            slot.steps += 1
            slot.total_reward += reward
            slot.last_info = info
            obs[i], rewards[i], terminated[i], truncated[i], infos[i] = o, reward, term, trunc, info
            if term or trunc:
                success = bool(info.get("success", False))
                reason = "success" if success else ("terminated" if term else "step_limit")
                infos[i] = {**info, "episode_result": self._finish(slot, success, reason), "final_obs": o}
                ended.append(slot)
        if ended:
            new_obs: list[dict[str, Any] | None] = [None] * n
            new_infos: list[dict[str, Any]] = [{} for _ in range(n)]
            self._start_episodes(ended, new_obs, new_infos)
            for slot in ended:
                i = slot.index
                obs[i] = new_obs[i]
                infos[i] = {**new_infos[i], **{k: infos[i][k] for k in ("episode_result", "final_obs")}}
        return obs, rewards, terminated, truncated, infos

    def abandon(self, reason: str = "abandoned by the caller") -> list[EpisodeResult]:
        """End every running episode now as a recorded failure (e.g. an agent's turn budget ran out); the workers
        stay up and pending episodes start on the next ``reset``/``step``. Returns the results it recorded."""
        self._check_open()
        self._check_landed("abandon")
        return [self._finish(slot, False, reason) for slot in self._slots if slot.spec is not None]

    def close(self, timeout: float = 10.0) -> None:
        """Ask workers to exit, then terminate/kill any that do not within ``timeout`` seconds in total."""
        if self._closed:
            return
        self._closed = True
        for slot in self._slots:
            if slot.worker is not None and not slot.pending_reply:
                slot.worker.request_close()
        deadline = time.monotonic() + timeout
        for slot in self._slots:
            if slot.worker is not None:
                slot.worker.join(max(0.0, deadline - time.monotonic()))
            self._kill(slot)

    def __enter__(self) -> "LiberoVectorEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close(timeout=2.0)

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("LiberoVectorEnv is closed")

    def _check_landed(self, what: str) -> None:
        if self._in_flight:
            raise RuntimeError(f"{what}: slots {sorted(self._in_flight)} are still stepping; call step_wait first")

    def _start(self, slot: _Slot) -> None:
        if self.backend == "ray":
            from envs.libero.ray_backend import RayWorker

            slot.worker = RayWorker(slot.index, self.env_entry_point, self.env_kwargs, self.worker_env,
                                    self.ray_options)
        else:
            slot.worker = ProcessWorker(self._ctx, slot.index, self.env_entry_point, self.env_kwargs,
                                        self.worker_env)
        slot.pending_reply = False

    def _kill(self, slot: _Slot) -> None:
        if slot.worker is not None:
            slot.worker.kill()
        slot.worker = None

    def _restart(self, slot: _Slot) -> None:
        self._kill(slot)
        self.restarts += 1
        self._start(slot)

    def _send(self, slot: _Slot, command: str, payload: Any) -> None:
        slot.pending_reply = slot.worker.send(command, payload)  # False: _receive reports the dead worker

    def _receive(self, slot: _Slot, deadline: float, budget: float) -> tuple[str, Any]:
        """Wait for one reply until ``deadline``; returns ("ok", value) or ("error", reason)."""
        if not slot.pending_reply:
            return "error", f"worker {slot.index} unreachable ({slot.worker.status()})"
        if not slot.worker.poll(max(0.0, deadline - time.monotonic())):
            slot.pending_reply = False
            return "error", f"worker {slot.index} stuck: no reply within {budget:.0f}s; killed"
        slot.pending_reply = False
        try:
            status, value = slot.worker.recv()
        except WorkerDied as exc:
            return "error", f"worker {slot.index} crashed ({exc})"
        if status != "ok":
            return "error", _last_line(value)
        return "ok", value

    def _finish(self, slot: _Slot, success: bool, reason: str) -> EpisodeResult:
        assert slot.spec is not None
        result = EpisodeResult(
            episode_id=slot.episode_id,
            task_id=slot.spec.task_id,
            init_state=slot.spec.init_state,
            group=slot.spec.group,
            success=success,
            steps=slot.steps,
            total_reward=slot.total_reward,
            reason=reason,
            worker=slot.index,
            wall_s=time.monotonic() - slot.started,
        )
        self.results.append(result)
        slot.spec, slot.episode_id = None, -1
        return result

    def _start_episodes(
        self, slots: list[_Slot], obs: list[dict[str, Any] | None], infos: list[dict[str, Any]]
    ) -> None:
        """Reset ``slots`` to pending episodes in parallel; a failed reset fails that episode and retries."""
        waiting = list(slots)
        while waiting and self._pending:
            started: list[_Slot] = []
            for slot in waiting:
                if not self._pending:
                    break
                episode_id, spec = self._pending.popleft()
                slot.spec, slot.episode_id = spec, episode_id
                slot.steps, slot.total_reward, slot.started = 0, 0.0, time.monotonic()
                self._send(slot, "reset", {"task_id": spec.task_id, "init_state": spec.init_state})
                started.append(slot)
            deadline = time.monotonic() + self.reset_timeout
            waiting = []
            for slot in started:
                status, reply = self._receive(slot, deadline, self.reset_timeout)
                if status == "ok":
                    obs[slot.index], infos[slot.index] = reply
                    slot.last_info = reply[1]
                else:
                    self._finish(slot, False, f"fault: reset: {reply}")
                    self._restart(slot)
                    waiting.append(slot)


def _last_line(text: Any) -> str:
    """The final line of a traceback (exception type and message), for compact fault reasons."""
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else str(text)
