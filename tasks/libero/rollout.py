"""Drive a :class:`~envs.libero.vector.LiberoVectorEnv` with one policy per slot and hand back finished episodes.

Shared by the evaluation runner and data collection. Every submitted episode yields exactly one
:class:`EpisodeRecord` (faulted episodes too, with whatever steps were recorded before the fault).

A *batched* policy (``batched=True``: the factory is called once and the object has ``act_batch(slots,
observations, infos)`` and ``reset_slot(slot)``) computes the actions of every running slot in one call per step,
e.g. one batched forward pass of a VLA. ``stats`` (a dict, optional) receives the wall seconds spent in the policy
(``policy_s``) and in the vector env (``env_s``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from envs.libero.vector import EpisodeResult, EpisodeSpec, LiberoVectorEnv
from tasks.libero.policies import PolicyFactory, as_action, reset_policy


@dataclass
class EpisodeRecord:
    """One finished episode: its result and (when recording) the observations and actions, step-aligned.

    ``proprio[t]`` / ``images[cam][t]`` is the observation on which ``actions[t]`` was taken; when frames are
    recorded, ``final_images[cam]`` is the observation after the last action (for videos).
    """

    result: EpisodeResult
    instruction: str = ""
    proprio: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)
    final_images: dict[str, np.ndarray] = field(default_factory=dict)

    def frames(self, camera: str) -> list[np.ndarray]:
        """All frames of ``camera`` including the final one (empty if images were not recorded)."""
        frames = list(self.images.get(camera, []))
        if camera in self.final_images:
            frames.append(self.final_images[camera])
        return frames


def run_episodes(
    vec: LiberoVectorEnv,
    policy_factory: PolicyFactory,
    specs: Sequence[EpisodeSpec],
    on_episode: Callable[[EpisodeRecord], None],
    record_steps: bool = False,
    record_images: bool = False,
    batched: bool = False,
    stats: dict[str, float] | None = None,
    overlap: bool = False,
) -> list[EpisodeResult]:
    """Run ``specs`` to completion; ``on_episode`` gets each record as it finishes. Returns results in spec order.

    ``overlap`` (a batched policy and at least 2 workers): the slots are split into two halves (even / odd) that
    step in turn — half A's simulators step (:meth:`LiberoVectorEnv.step_async`) while the policy computes half
    B's actions, and the other way round — so model and simulators work at the same time instead of waiting for
    each other. Every slot still takes one action per observation, in order; only the schedule changes."""
    start = len(vec.results)
    ids = vec.submit(specs)
    shared = policy_factory() if batched else None
    policies = [shared] * vec.num_workers if batched else [policy_factory() for _ in range(vec.num_workers)]
    stats = stats if stats is not None else {}
    stats.setdefault("policy_s", 0.0)
    stats.setdefault("env_s", 0.0)
    open_records: dict[int, EpisodeRecord] = {}
    delivered = start
    n = vec.num_workers
    obs: list[dict[str, Any] | None] = [None] * n
    infos: list[dict[str, Any]] = [{} for _ in range(n)]

    def track_new_episodes(slots: Sequence[int]) -> None:
        episode_ids = vec.episode_ids
        for i in slots:
            episode_id = episode_ids[i]
            if episode_id >= 0 and episode_id not in open_records:
                placeholder = EpisodeResult(episode_id, -1, -1, None, False, 0, 0.0, "running", i, 0.0)
                open_records[episode_id] = EpisodeRecord(placeholder, instruction=str(infos[i].get("instruction", "")))
                if batched:
                    shared.reset_slot(i)
                else:
                    reset_policy(policies[i])

    def deliver() -> None:
        nonlocal delivered
        while delivered < len(vec.results):
            result = vec.results[delivered]
            delivered += 1
            record = open_records.pop(result.episode_id, None) or EpisodeRecord(result)
            record.result = result
            on_episode(record)

    def act(slots: Sequence[int]) -> tuple[list[np.ndarray], list[int]]:
        """Actions of the running ``slots`` (one policy call for all of them when batched), recorded."""
        clock = time.perf_counter()
        episode_ids = vec.episode_ids
        live = [i for i in slots if episode_ids[i] >= 0 and obs[i] is not None]
        if batched:
            acted = shared.act_batch(live, [obs[i] for i in live], [infos[i] for i in live]) if live else []
            raw = dict(zip(live, acted))
        else:
            raw = {i: policies[i](obs[i], infos[i]) for i in live}
        stats["policy_s"] += time.perf_counter() - clock
        actions = [np.zeros(7, dtype=np.float32) for _ in range(n)]
        for i in live:
            action = as_action(raw[i], f"episode {episode_ids[i]} (slot {i})")
            actions[i] = action
            record = open_records[episode_ids[i]]
            if record_steps:
                record.proprio.append(np.asarray(obs[i]["proprio"], dtype=np.float32))
                record.actions.append(action)
            if record_images:
                for cam, image in obs[i].get("images", {}).items():
                    record.images.setdefault(cam, []).append(image)
        return actions, live

    def land(slots: Sequence[int], running: list[int], result: tuple) -> None:
        """Record the outcome of one step of ``slots`` (episode ids ``running`` before the step)."""
        new_obs, rewards, _, _, new_infos = result
        for i in slots:
            obs[i], infos[i] = new_obs[i], new_infos[i]
            record = open_records.get(running[i]) if running[i] >= 0 else None
            if record is None:
                continue
            if record_steps and len(record.rewards) < len(record.actions):
                record.rewards.append(float(rewards[i]))
            final = new_infos[i].get("final_obs") if "episode_result" in new_infos[i] else new_obs[i]
            if record_images and "episode_result" in new_infos[i] and final is not None:
                record.final_images = dict(final.get("images", {}))
        track_new_episodes(slots)
        deliver()

    clock = time.perf_counter()
    obs, infos = vec.reset()
    stats["env_s"] += time.perf_counter() - clock
    track_new_episodes(range(n))
    deliver()
    if overlap and batched and n >= 2:
        _pipelined(vec, act, land, stats)
    else:
        while not vec.done:
            actions, _ = act(range(n))
            running = vec.episode_ids
            clock = time.perf_counter()
            result = vec.step(actions)
            stats["env_s"] += time.perf_counter() - clock
            land(range(n), running, result)
    by_id = {r.episode_id: r for r in vec.results[start:]}
    return [by_id[i] for i in ids]


def _pipelined(vec: LiberoVectorEnv, act: Callable, land: Callable, stats: dict[str, float]) -> None:
    """The overlapped schedule of :func:`run_episodes`: two halves of the slots alternate between being stepped
    by their simulators and being given actions by the policy. ``env_s`` counts only the time spent waiting for
    the simulators (what the overlap did not hide)."""
    halves = [list(range(0, vec.num_workers, 2)), list(range(1, vec.num_workers, 2))]
    sent: list[tuple[list[int], list[int]] | None] = [None, None]

    def launch(h: int) -> None:
        actions, live = act(halves[h])
        if live:
            running = vec.episode_ids
            vec.step_async(actions, live)
            sent[h] = (live, running)

    def collect(h: int) -> None:
        if sent[h] is None:
            return
        live, running = sent[h]
        sent[h] = None
        clock = time.perf_counter()
        result = vec.step_wait(live)
        stats["env_s"] += time.perf_counter() - clock
        land(live, running, result)

    launch(0)
    h = 1
    while sent[0] is not None or sent[1] is not None or not vec.done:
        launch(h)  # the policy works on half h while half 1-h's simulators step
        collect(1 - h)
        h = 1 - h
    # both halves are landed here: every episode has a result
