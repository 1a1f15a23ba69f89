"""Overlapped model and simulator stepping (``run_episodes(..., overlap=True)``) over real spawn workers running the
fake env of test_libero_vector (no simulator): the same episodes, actions and outcomes as the sequential loop,
with the policy called for one half of the slots while the other half's steps are in flight."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from envs.libero.vector import EpisodeSpec, LiberoVectorEnv
from tests.test_libero_vector import EPISODE_LEN

pytestmark = pytest.mark.libero


class RecordingPolicy:
    """A batched policy whose action depends only on the observation; it notes how many slots were stepping in
    the simulators while it computed (the overlap)."""

    batched = True

    def __init__(self, vec: LiberoVectorEnv) -> None:
        self.vec, self.in_flight_during_calls, self.resets = vec, [], 0

    def reset_slot(self, slot: int) -> None:
        self.resets += 1

    def act_batch(self, slots: list[int], observations: list[dict[str, Any]], infos: list[dict[str, Any]]):
        self.in_flight_during_calls.append(len(self.vec._in_flight))
        return [np.full(7, 0.1 * float(o["proprio"][0]) - 0.05 * s, np.float32) for s, o in zip(slots, observations)]


def _run(workers: int, overlap: bool) -> tuple[list[Any], dict[int, list], RecordingPolicy, dict[str, float]]:
    from tasks.libero.rollout import run_episodes

    specs = [EpisodeSpec(0, k) for k in (0, 1, 2, 3, 4)]  # init state 1 raises inside the env at its 2nd step
    records: dict[int, list] = {}
    with LiberoVectorEnv(workers, {"mode": "raise"}, env_entry_point="tests.test_libero_vector:FakeEnv",
                         step_timeout=20.0, reset_timeout=60.0) as vec:
        policy = RecordingPolicy(vec)
        stats: dict[str, float] = {}
        results = run_episodes(vec, lambda: policy, specs,
                               lambda r: records.__setitem__(r.result.init_state, [a.tolist() for a in r.actions]),
                               record_steps=True, batched=True, stats=stats, overlap=overlap)
    return results, records, policy, stats


def test_overlap_plays_the_same_episodes_while_the_other_half_steps():
    sequential, seq_records, seq_policy, _ = _run(2, overlap=False)
    overlapped, records, policy, stats = _run(2, overlap=True)
    outcome = lambda rs: [(r.init_state, r.success, r.steps, r.reason.split(":")[0]) for r in rs]  # noqa: E731
    assert outcome(overlapped) == outcome(sequential)
    assert [r.success for r in overlapped] == [True, False, True, False, True]
    assert overlapped[1].reason.startswith("fault") and "injected fault" in overlapped[1].reason
    assert [r.steps for r in overlapped] == [EPISODE_LEN, 1, EPISODE_LEN, EPISODE_LEN, EPISODE_LEN]
    # an action depends on (slot, observation): the slot an episode ran on differs between schedules, so compare
    # the per-step observation part (the fake observation is the step count)
    assert {k: len(v) for k, v in records.items()} == {k: len(v) for k, v in seq_records.items()}
    assert policy.resets == seq_policy.resets == 5
    assert all(n == 0 for n in seq_policy.in_flight_during_calls)  # sequential: the simulators wait for the model
    # overlapped: the first call has nothing to overlap with, then every call runs while the other half steps,
    # until one half runs out of episodes (slot 0 plays 2 whole episodes, so at least 2 x 4 - 1 overlapped calls)
    calls = "".join(str(n) for n in policy.in_flight_during_calls)
    assert calls[0] == "0" and calls[1:].lstrip("1").strip("0") == "" and calls.count("1") >= 2 * EPISODE_LEN - 1
    assert stats["policy_s"] > 0 and stats["env_s"] > 0


def test_overlap_with_an_odd_number_of_workers_and_step_async_guards():
    sequential, *_ = _run(3, overlap=False)
    overlapped, *_ = _run(3, overlap=True)
    assert sorted((r.init_state, r.success, r.steps) for r in overlapped) == \
        sorted((r.init_state, r.success, r.steps) for r in sequential)
    with LiberoVectorEnv(2, {}, env_entry_point="tests.test_libero_vector:FakeEnv") as vec:
        vec.submit([EpisodeSpec(0, 0), EpisodeSpec(0, 2)])
        vec.reset()
        assert vec.step_async(np.zeros((2, 7), np.float32), [1]) == [1]
        with pytest.raises(RuntimeError, match=r"slots \[1\] are still stepping"):
            vec.step_async(np.zeros((2, 7), np.float32))
        with pytest.raises(RuntimeError, match="call step_wait first"):
            vec.reset()
        obs, rewards, *_ = vec.step_wait()
        assert obs[0] is None and obs[1]["proprio"][0] == 1 and rewards.tolist() == [0.0, 0.0]
