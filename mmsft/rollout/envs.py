"""One batched-environment protocol for the agent loop, and adapters for our environments.

:class:`BatchedEnv`: ``reset(seeds, group_size)`` starts ``len(seeds) * group_size`` episodes — slot ``i`` plays
level ``seeds[i // group_size]``, so a GRPO group's episodes share one level / init state and sit in contiguous
slots — and returns per-slot observation dicts and infos; ``step(actions)`` takes one action per slot (``None``
leaves a slot untouched: reward 0, not stepped) and returns a :class:`StepResult` with per-slot lists / arrays.
There is no auto-reset: a finished slot stays finished until the next ``reset``. Observations are dicts with
``text``, ``image`` (H×W×3 uint8), ``proprio`` or ``instruction`` keys, as the environments return them.
A slot whose episode could not start (a simulator that failed to build or reset) returns observation ``None`` and
``info["start_failed"]`` = the reason; the agent loop ends that episode at once (``end="start_failed"``) and the
env producer leaves it out of its group (see :mod:`mmsft.train.env_producer`), so one broken reset costs one
episode, not the RL step.

Adapters: :class:`SokobanBatch` (our numpy-vectorised ``SokobanVecEnv``), :class:`GymBatch` (any gymnasium env,
stepped in-process in a list — General Points and VGRP episodes are one or a few cheap steps) and
:class:`LiberoBatch` (``LiberoVectorEnv`` worker processes; imported lazily because LIBERO is an optional extra).
:func:`step_chunks` applies per-slot action chunks (several primitive actions in one turn) to any of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

logger = logging.getLogger(__name__)

@dataclass
class StepResult:
    """Per-slot outcome of one batched step (slots given ``None`` report reward 0 and both flags False)."""

    observations: list[dict[str, Any] | None]
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: list[dict[str, Any]] = field(default_factory=list)


class BatchedEnv(Protocol):
    """The protocol the agent loop drives; see the module docstring."""

    num_envs: int

    def reset(self, seeds: Sequence[int], group_size: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ...

    def step(self, actions: Sequence[Any]) -> StepResult:
        ...

    def close(self) -> None:
        ...


def group_seeds(seeds: Sequence[int], group_size: int, num_envs: int) -> list[int]:
    """Per-slot seeds: each seed repeated ``group_size`` times; the count must fill the batch exactly."""
    if group_size < 1:
        raise ValueError(f"group_size={group_size}: expected >= 1")
    if len(seeds) * group_size != num_envs:
        raise ValueError(f"{len(seeds)} seeds x group_size={group_size} = {len(seeds) * group_size} episodes, "
                         f"but the batched env has {num_envs} slots")
    return [int(s) for s in seeds for _ in range(group_size)]


def step_chunks(env: BatchedEnv, chunks: Sequence[Sequence[Any] | None]) -> StepResult:
    """Apply a chunk of primitive actions per slot (``None`` or empty: the slot does not move this turn).

    Rewards are summed over the chunk; a slot stops at the first step that terminates or truncates it (the rest
    of its chunk is dropped). Observations and infos are those after each slot's last executed step; slots that
    did not move get ``None`` / ``{}``.
    """
    n = env.num_envs
    if len(chunks) != n:
        raise ValueError(f"got {len(chunks)} action chunks for {n} slots")
    total = StepResult([None] * n, np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool),
                       [{} for _ in range(n)])
    ended = np.zeros(n, dtype=bool)
    longest = max((len(c) for c in chunks if c is not None), default=0)
    for j in range(longest):
        actions = [c[j] if c is not None and len(c) > j and not ended[i] else None for i, c in enumerate(chunks)]
        moving = np.array([a is not None for a in actions])
        if not moving.any():
            break
        result = env.step(actions)
        total.rewards += np.where(moving, result.rewards, 0.0)
        for i in np.flatnonzero(moving):
            total.observations[i] = result.observations[i]
            total.infos[i] = result.infos[i]
            total.terminated[i] |= bool(result.terminated[i])
            total.truncated[i] |= bool(result.truncated[i])
        ended |= moving & (result.terminated | result.truncated)
    return total


def _split_obs(obs: dict[str, Any], n: int) -> list[dict[str, Any]]:
    return [{key: value[i] for key, value in obs.items()} for i in range(n)]


def _split_info(info: dict[str, Any], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in info.items():
        if value is None:
            continue
        for i in range(n):
            item = value[i]
            out[i][key] = item.item() if isinstance(item, np.generic) else item
    return out


class SokobanBatch:
    """:class:`envs.sokoban.vector.SokobanVecEnv` behind :class:`BatchedEnv` (actions: ints 0..3 = U, D, L, R)."""

    def __init__(self, vec: Any) -> None:
        self.vec = vec
        self.num_envs = int(vec.num_envs)

    def reset(self, seeds: Sequence[int], group_size: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        obs, info = self.vec.reset(group_seeds(seeds, group_size, self.num_envs))
        return _split_obs(obs, self.num_envs), _split_info(info, self.num_envs)

    def step(self, actions: Sequence[Any]) -> StepResult:
        if len(actions) != self.num_envs:
            raise ValueError(f"got {len(actions)} actions for {self.num_envs} slots")
        active = np.array([a is not None for a in actions])
        moves = np.array([int(a) if a is not None else 0 for a in actions], dtype=np.int64)
        obs, rewards, terminated, truncated, info = self.vec.step(moves, active)
        return StepResult(_split_obs(obs, self.num_envs), np.where(active, rewards, 0.0), terminated & active,
                          truncated & active, _split_info(info, self.num_envs))

    def render_frames(self) -> np.ndarray:
        """``(B, H, W, 3)`` uint8 frames of the current states (for GIFs, whatever the observation mode)."""
        return self.vec.render_images()

    def close(self) -> None:
        pass


class GymBatch:
    """A list of gymnasium envs stepped in-process; ``reset_options(seed)`` maps a level seed to reset kwargs
    (default ``{"seed": seed}``)."""

    def __init__(self, make_env: Callable[[], Any], num_envs: int,
                 reset_kwargs: Callable[[int], dict[str, Any]] | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}: expected >= 1")
        self.envs = [make_env() for _ in range(num_envs)]
        self.num_envs = num_envs
        self.reset_kwargs = reset_kwargs or (lambda seed: {"seed": seed})

    def reset(self, seeds: Sequence[int], group_size: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        pairs = [env.reset(**self.reset_kwargs(seed)) for env, seed in
                 zip(self.envs, group_seeds(seeds, group_size, self.num_envs))]
        return [p[0] for p in pairs], [dict(p[1]) for p in pairs]

    def step(self, actions: Sequence[Any]) -> StepResult:
        if len(actions) != self.num_envs:
            raise ValueError(f"got {len(actions)} actions for {self.num_envs} slots")
        n = self.num_envs
        result = StepResult([None] * n, np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool),
                            [{} for _ in range(n)])
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            if action is None:
                continue
            obs, reward, terminated, truncated, info = env.step(action)
            result.observations[i], result.rewards[i] = obs, float(reward)
            result.terminated[i], result.truncated[i], result.infos[i] = bool(terminated), bool(truncated), dict(info)
        return result

    def close(self) -> None:
        for env in self.envs:
            env.close()


class LiberoBatch:
    """:class:`envs.libero.vector.LiberoVectorEnv` behind :class:`BatchedEnv`; one worker per slot.

    ``episode_of(seed) -> (task_id, init_state)`` maps a level seed to a LIBERO episode. Episodes still running
    when the next ``reset`` comes (the agent's turn budget ran out first) are abandoned and recorded as failures.
    An episode whose reset fails (the worker raised, crashed or timed out while building or resetting the
    simulator; :class:`~envs.libero.vector.LiberoVectorEnv` records it as a ``fault: reset: ...`` failure and
    restarts the worker) leaves its slot idle: observation ``None``, ``info["start_failed"]`` = the reason. Such
    failures are counted in ``start_failures`` (with the reasons in ``start_failure_reasons``, the latest 20)
    and logged as warnings; the other slots play on.
    """

    def __init__(self, vec: Any, episode_of: Callable[[int], tuple[int, int]]) -> None:
        self.vec = vec
        self.num_envs = int(vec.num_workers)
        self.episode_of = episode_of
        self.start_failures = 0
        self.start_failure_reasons: list[str] = []

    def _abandon_running(self) -> None:
        self.vec.abandon("abandoned: agent turn budget")

    def reset(self, seeds: Sequence[int], group_size: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from envs.libero.vector import grpo_groups

        per_slot = group_seeds(seeds, group_size, self.num_envs)
        self._abandon_running()
        before = len(self.vec.results)
        self.vec.submit(grpo_groups([self.episode_of(s) for s in seeds], group_size))
        obs, infos = self.vec.reset()
        infos = [dict(i) for i in infos]
        # every slot was idle and exactly one episode per slot was queued in slot order, so slot i's episode is
        # the i-th submitted one; a failed reset is recorded as a result on that worker (not retried: no episode
        # is left pending for the slot)
        faults = {r.worker: r for r in self.vec.results[before:] if r.reason.startswith("fault")}
        for i, o in enumerate(obs):
            if o is not None:
                continue
            result = faults.get(i)
            reason = result.reason if result is not None else "fault: reset: no observation"
            task_id, init_state = self.episode_of(per_slot[i])
            infos[i] = {"start_failed": reason, "success": False, "task_id": task_id, "init_state": init_state}
            self.start_failures += 1
            self.start_failure_reasons = (self.start_failure_reasons + [reason])[-20:]
            logger.warning("LIBERO episode (task %d, init state %d) failed to start on slot %d: %s; that episode "
                           "is a counted failure, left out of its GRPO group, and the other slots play on",
                           task_id, init_state, i, reason)
        return list(obs), infos

    def step(self, actions: Sequence[Any]) -> StepResult:
        n = self.num_envs
        if len(actions) != n:
            raise ValueError(f"got {len(actions)} actions for {n} slots")
        running = self.vec.active
        moving = np.array([a is not None for a in actions])
        if bool((moving != running).any()):
            raise ValueError(f"LiberoVectorEnv steps every running episode and only those: running slots "
                             f"{np.flatnonzero(running).tolist()}, slots given actions "
                             f"{np.flatnonzero(moving).tolist()}")
        zero = np.zeros(7, dtype=np.float32)
        obs, rewards, terminated, truncated, infos = self.vec.step(
            [np.asarray(a, dtype=np.float32) if a is not None else zero for a in actions])
        infos = [dict(i) for i in infos]
        for i in range(n):
            if terminated[i] or truncated[i]:
                # the slot went idle: report the episode's last observation, and its outcome (LiberoVectorEnv
                # replaces the final step's info by the next episode's reset info plus the EpisodeResult)
                obs[i] = infos[i].get("final_obs", obs[i])
                ended = infos[i].get("episode_result")
                if ended is not None:
                    infos[i]["success"] = bool(ended.success)
                    infos[i]["end_reason"] = ended.reason
        return StepResult(list(obs), np.asarray(rewards, dtype=np.float64), np.asarray(terminated, dtype=bool),
                          np.asarray(truncated, dtype=bool), infos)

    def close(self) -> None:
        self.vec.close()
