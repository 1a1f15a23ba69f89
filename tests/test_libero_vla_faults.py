"""Faults during an RL rollout (the VLA agent loop over real spawn workers running a fake env; no simulator needed):
a worker that dies mid-episode ends that episode as a recorded failure, and a reset that fails ends only that
episode (counted, logged, left out of its GRPO group); the rollout continues with the other episodes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from tests.test_libero_vector import FakeEnv

pytestmark = pytest.mark.libero


class ImageFakeEnv(FakeEnv):
    """The fake env of test_libero_vector with an agentview image (a VLA needs one); init state 1 crashes."""

    def _obs(self) -> dict[str, Any]:
        return {**super()._obs(), "images": {"agentview": np.full((16, 16, 3), 10 * self.t, np.uint8)}}


def faulty_loop(tiny_models, env_entry_point: str, env_kwargs: dict[str, Any]):
    """The tiny VLA's agent loop over a LIBERO task whose vector env runs ``env_entry_point`` in spawn workers;
    returns ``(task, loop)`` (``task.vec`` / ``task.batch``: the vector env and its batch)."""
    from envs.libero.vector import LiberoVectorEnv
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.rollout.agent import AgentLoop
    from mmsft.rollout.engine import HFGenerateEngine
    from mmsft.rollout.env_config import EnvConfig
    from mmsft.rollout.envs import LiberoBatch
    from tasks.libero.env_task import LiberoTask

    class FaultyTask(LiberoTask):
        def make_env(self, num_envs: int) -> LiberoBatch:
            self.vec = LiberoVectorEnv(num_envs, env_kwargs, env_entry_point=env_entry_point, step_timeout=20.0,
                                       reset_timeout=120.0)
            self.batch = LiberoBatch(self.vec, self.episode_of)
            return self.batch

    loaded = load_model(str(tiny_models["vla"]))
    adapter = build_adapter(loaded)
    cfg = EnvConfig(concat_turns=False, max_turns=6, task_args={"task_ids": [0], "image_size": 16})
    task = FaultyTask(cfg, adapter)
    return task, AgentLoop(task, adapter, HFGenerateEngine(lambda: loaded.model, adapter), cfg, max_length=2048)


def test_worker_death_fails_one_episode_and_the_rollout_continues(tiny_models):
    from mmsft.train.env_producer import scored_sequences

    task, loop = faulty_loop(tiny_models, f"{__name__}:ImageFakeEnv", {"mode": "crash"})
    try:
        episodes = loop.run([0, 1], group_size=2, temperature=1.0, seed=0)  # init states 0 (ok) and 1 (crash)
    finally:
        results = list(task.vec.results)
        loop.close()
    crashed = [r for r in results if r.init_state == 1]
    assert len(crashed) == 2 and all(not r.success and "crashed" in r.reason for r in crashed)
    assert [e.success for e in episodes] == [True, True, False, False]  # even init states succeed after 4 steps
    assert [len(e.turns) for e in episodes] == [4, 4, 2, 2] and all(e.end == "terminated" for e in episodes)
    sequences = scored_sequences(episodes, "success")
    assert len(sequences) == 12 and {s.reward for s in sequences[:8]} == {1.0}


class ResetFaultEnv(ImageFakeEnv):
    """The first reset of init state 2 across all workers raises (the marker file makes it exactly one)."""

    def __init__(self, task_id: int, mode: str = "ok", marker: str = "") -> None:
        super().__init__(task_id, mode)
        self.marker = marker

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if options["init_state"] == 2:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                raise RuntimeError("injected reset fault")
        return super().reset(seed=seed, options=options)


def test_failed_reset_fails_one_episode_and_leaves_it_out_of_its_group(tiny_models, tmp_path, caplog):
    from mmsft.rollout.agent import episode_metrics
    from mmsft.train.env_producer import scored_sequences, training_episodes

    task, loop = faulty_loop(tiny_models, f"{__name__}:ResetFaultEnv", {"marker": str(tmp_path / "fault-once")})
    try:
        with caplog.at_level("WARNING", logger="mmsft.rollout.envs"):
            episodes = loop.run([0, 2], group_size=2, temperature=1.0, seed=0)  # init state 2: one reset raises
        results = list(task.vec.results)
        restarts = task.vec.restarts
    finally:
        loop.close()
    failed = [e for e in episodes if not e.started]
    assert len(failed) == 1 and failed[0].group == 1 and failed[0].end == "start_failed"
    assert "injected reset fault" in failed[0].fault and not failed[0].turns and not failed[0].sequences
    assert task.batch.start_failures == 1 and "injected reset fault" in task.batch.start_failure_reasons[0]
    assert restarts == 1 and "injected reset fault" in caplog.text
    assert sum(r.reason.startswith("fault: reset") for r in results) == 1
    started = [e for e in episodes if e.started]  # the other three play to the end (even init states succeed)
    assert [e.success for e in started] == [True, True, True] and all(len(e.turns) == 4 for e in started)
    metrics = episode_metrics(episodes, "rollout", "success")
    assert metrics["rollout/start_failures"] == 1.0 and metrics["rollout/success_rate"] == 0.75
    trained, _ = training_episodes(episodes, "success", dynamic_sampling=False)
    assert trained == started and len(scored_sequences(trained, "success")) == 12


def test_start_failures_do_not_count_in_group_statistics():
    """The exclusion policy: a start failure is no sample of the policy, so it neither lowers its group's mean nor
    turns an all-success group into an 'informative' one that dynamic sampling would keep."""
    from mmsft.rollout.agent import Episode
    from mmsft.train.env_producer import training_episodes

    def episode(slot: int, group: int, success: bool, end: str = "terminated") -> Episode:
        return Episode(slot, group, group, success=success, end=end)

    episodes = [episode(0, 0, True), episode(1, 0, False, "start_failed"),  # group 0: one success, one no-start
                episode(2, 1, True), episode(3, 1, False)]  # group 1: informative
    trained, stats = training_episodes(episodes, "success", dynamic_sampling=True)
    assert [e.slot for e in trained] == [2, 3] and stats["rollout/dropped_zero_std_groups"] == 1.0
    trained, stats = training_episodes(episodes, "success", dynamic_sampling=False)
    assert [e.slot for e in trained] == [0, 2, 3] and stats == {}
