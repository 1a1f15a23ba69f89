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
) -> list[EpisodeResult]:
    """Run ``specs`` to completion; ``on_episode`` gets each record as it finishes. Returns results in spec order."""
    start = len(vec.results)
    ids = vec.submit(specs)
    shared = policy_factory() if batched else None
    policies = [shared] * vec.num_workers if batched else [policy_factory() for _ in range(vec.num_workers)]
    stats = stats if stats is not None else {}
    stats.setdefault("policy_s", 0.0)
    stats.setdefault("env_s", 0.0)
    open_records: dict[int, EpisodeRecord] = {}
    delivered = start

    def track_new_episodes(obs: list[dict[str, Any] | None], infos: list[dict[str, Any]]) -> None:
        for i, episode_id in enumerate(vec.episode_ids):
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

    clock = time.perf_counter()
    obs, infos = vec.reset()
    stats["env_s"] += time.perf_counter() - clock
    track_new_episodes(obs, infos)
    deliver()
    while not vec.done:
        clock = time.perf_counter()
        live = [i for i, episode_id in enumerate(vec.episode_ids) if episode_id >= 0 and obs[i] is not None]
        if batched:
            acted = shared.act_batch(live, [obs[i] for i in live], [infos[i] for i in live]) if live else []
            raw = dict(zip(live, acted))
        else:
            raw = {i: policies[i](obs[i], infos[i]) for i in live}
        stats["policy_s"] += time.perf_counter() - clock
        actions = []
        for i, episode_id in enumerate(vec.episode_ids):
            if i not in raw:
                actions.append(np.zeros(7, dtype=np.float32))
                continue
            action = as_action(raw[i], f"episode {episode_id} (slot {i})")
            actions.append(action)
            record = open_records[episode_id]
            if record_steps:
                record.proprio.append(np.asarray(obs[i]["proprio"], dtype=np.float32))
                record.actions.append(action)
            if record_images:
                for cam, image in obs[i].get("images", {}).items():
                    record.images.setdefault(cam, []).append(image)
        running = vec.episode_ids
        clock = time.perf_counter()
        obs, rewards, _, _, infos = vec.step(actions)
        stats["env_s"] += time.perf_counter() - clock
        for i, episode_id in enumerate(running):
            if episode_id < 0:
                continue
            record = open_records.get(episode_id)
            if record is None:
                continue
            if record_steps and len(record.rewards) < len(record.actions):
                record.rewards.append(float(rewards[i]))
            final = infos[i].get("final_obs") if "episode_result" in infos[i] else obs[i]
            if record_images and "episode_result" in infos[i] and final is not None:
                record.final_images = dict(final.get("images", {}))
        track_new_episodes(obs, infos)
        deliver()
    by_id = {r.episode_id: r for r in vec.results[start:]}
    return [by_id[i] for i in ids]
