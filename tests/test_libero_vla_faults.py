"""A worker that dies during an RL rollout ends that episode as a recorded failure and the rollout continues with the
other episodes (the VLA agent loop over real spawn workers running a fake env; no simulator needed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.test_libero_vector import FakeEnv

pytestmark = pytest.mark.libero


class ImageFakeEnv(FakeEnv):
    """The fake env of test_libero_vector with an agentview image (a VLA needs one); init state 1 crashes."""

    def _obs(self) -> dict[str, Any]:
        return {**super()._obs(), "images": {"agentview": np.full((16, 16, 3), 10 * self.t, np.uint8)}}


def test_worker_death_fails_one_episode_and_the_rollout_continues(tiny_models):
    from envs.libero.vector import LiberoVectorEnv
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.rollout.agent import AgentLoop
    from mmsft.rollout.engine import HFGenerateEngine
    from mmsft.rollout.env_config import EnvConfig
    from mmsft.rollout.envs import LiberoBatch
    from mmsft.train.env_producer import scored_sequences
    from tasks.libero.env_task import LiberoTask

    class FaultyTask(LiberoTask):
        def make_env(self, num_envs: int) -> LiberoBatch:
            self.vec = LiberoVectorEnv(num_envs, {"mode": "crash"}, env_entry_point=f"{__name__}:ImageFakeEnv",
                                       step_timeout=20.0, reset_timeout=120.0)
            return LiberoBatch(self.vec, self.episode_of)

    loaded = load_model(str(tiny_models["vla"]))
    adapter = build_adapter(loaded)
    cfg = EnvConfig(concat_turns=False, max_turns=6, task_args={"task_ids": [0], "image_size": 16})
    task = FaultyTask(cfg, adapter)
    loop = AgentLoop(task, adapter, HFGenerateEngine(lambda: loaded.model, adapter), cfg, max_length=2048)
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
