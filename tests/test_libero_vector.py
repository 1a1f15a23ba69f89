"""LiberoVectorEnv scheduling and fault isolation with a fake environment (no simulator needed, a few seconds).

The fake env runs in real spawn-context workers; episodes with init state 1 misbehave in the requested way
(raise, crash the process, hang), so every test checks that the fault ends exactly that episode as a failure
with a reason, the worker is restarted, and every other episode still completes. The same tests run on the Ray
backend (a local Ray instance with 2 CPUs, 2 actor workers) when ray is installed (``pip install mmsft[ray]``),
and are skipped otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from envs.libero.vector import EpisodeSpec, LiberoVectorEnv, grpo_groups, stack_observations

pytestmark = pytest.mark.libero
EPISODE_LEN = 4


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance for this module's Ray-backend cases (started once, shut down at the end)."""
    ray = pytest.importorskip("ray", reason="the Ray backend needs ray (pip install 'mmsft[ray]')")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(params=["process", "ray"])
def backend(request) -> str:
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    return request.param


class FakeEnv(gym.Env):
    """Succeeds on even init states after EPISODE_LEN steps; init state 1 faults according to ``mode``."""

    def __init__(self, task_id: int, mode: str = "ok") -> None:
        self.task_id, self.mode, self.t, self.init_state = task_id, mode, 0, -1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.task_id, self.init_state, self.t = options["task_id"], options["init_state"], 0
        return self._obs(), {"instruction": f"task {self.task_id}", "success": False}

    def step(self, action):
        self.t += 1
        if self.init_state == 1 and self.t == 2:
            if self.mode == "raise":
                raise RuntimeError("injected fault")
            if self.mode == "crash":
                os._exit(3)
            if self.mode == "stuck":
                time.sleep(600)
        done = self.t >= EPISODE_LEN
        success = done and self.init_state % 2 == 0
        return self._obs(), float(success), success, done and not success, {"success": success}

    def _obs(self) -> dict[str, Any]:
        return {"proprio": np.full(8, self.t, np.float32), "instruction": f"task {self.task_id}"}


def _run(vec: LiberoVectorEnv, specs: list[EpisodeSpec], max_calls: int = 100) -> None:
    vec.submit(specs)
    obs, _ = vec.reset()
    calls = 0
    while not vec.done:
        obs, *_ = vec.step([np.zeros(7, np.float32)] * vec.num_workers)
        calls += 1
        assert calls < max_calls, "vector env did not finish"


# an exception inside the env is caught by the same EnvServer on both backends, so Ray runs the two transport faults
@pytest.mark.parametrize("mode,backend", [("raise", "process"), ("crash", "process"), ("stuck", "process"),
                                          ("crash", "ray"), ("stuck", "ray")])
def test_fault_ends_episode_restarts_worker_and_loses_nothing(mode: str, backend: str, request) -> None:
    if backend == "ray":
        request.getfixturevalue("local_ray")
    specs = [EpisodeSpec(0, k) for k in range(4)]
    with LiberoVectorEnv(
        2, {"mode": mode}, env_entry_point=f"{__name__}:FakeEnv", step_timeout=3.0, reset_timeout=60.0,
        backend=backend,
    ) as vec:
        pids = vec.worker_pids
        assert len(set(pids)) == 2 and os.getpid() not in pids  # two separate worker processes
        _run(vec, specs)
        results = sorted(vec.results, key=lambda r: r.episode_id)
        restarts = vec.restarts
    assert [r.init_state for r in results] == [0, 1, 2, 3]
    faulted = results[1]
    assert not faulted.success and faulted.reason.startswith("fault")
    expected = {"raise": "injected fault", "crash": "crashed", "stuck": "stuck"}[mode]
    assert expected in faulted.reason
    if mode == "crash":  # how the worker ended: a process exit code, or the Ray actor's death
        assert ("exit code 3" if backend == "process" else "Ray actor") in faulted.reason
    assert faulted.steps == 1  # the faulting step is not counted as completed
    assert restarts == 1
    assert [r.success for r in results] == [True, False, True, False]
    assert results[3].reason == "step_limit" and results[3].steps == EPISODE_LEN


def test_auto_reset_groups_and_batching(backend: str) -> None:
    specs = grpo_groups([(0, 0), (2, 2)], group_size=3)
    assert [s.group for s in specs] == [0, 0, 0, 1, 1, 1]
    with LiberoVectorEnv(2, {}, env_entry_point=f"{__name__}:FakeEnv", backend=backend) as vec:
        vec.submit(specs)
        obs, infos = vec.reset()
        assert infos[0]["instruction"] == "task 0"
        batch = stack_observations(obs)
        assert batch["proprio"].shape == (2, 8) and batch["instruction"] == ["task 0", "task 0"]
        ended = 0
        while not vec.done:
            obs, rewards, term, trunc, infos = vec.step(np.zeros((2, 7), np.float32))
            for i, info in enumerate(infos):
                if "episode_result" in info:
                    ended += 1
                    assert info["final_obs"]["proprio"][0] == EPISODE_LEN
                    assert rewards[i] == 1.0 and term[i]
                    if obs[i] is not None:  # same-step auto-reset into the next episode
                        assert obs[i]["proprio"][0] == 0
        assert ended == 6 and vec.restarts == 0
        assert sorted((r.group, r.task_id) for r in vec.results) == [(0, 0)] * 3 + [(1, 2)] * 3
        assert all(r.success for r in vec.results)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="num_workers"):
        LiberoVectorEnv(0)
    with pytest.raises(ValueError, match="group_size"):
        grpo_groups([(0, 0)], 0)
    with pytest.raises(ValueError, match="task_id"):
        LiberoVectorEnv(1, {"task_id": 3})
    with pytest.raises(ValueError, match="backend='dask'; expected one of"):
        LiberoVectorEnv(1, backend="dask")
    with pytest.raises(ValueError, match="ray_options are for backend='ray'"):
        LiberoVectorEnv(1, ray_options={"num_cpus": 2})


def _gone(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")  # exited (a zombie waiting for init to reap it)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_busy_worker_dies_with_a_killed_parent() -> None:
    """A parent killed by a signal never closes its workers; one stuck in a step must not outlive it."""
    root = Path(__file__).resolve().parents[1]
    script = (f"import sys; sys.path.insert(0, {str(root)!r})\n"
              "import numpy as np\n"
              "from envs.libero.vector import EpisodeSpec, LiberoVectorEnv\n"
              "vec = LiberoVectorEnv(1, {'mode': 'stuck'}, env_entry_point='tests.test_libero_vector:FakeEnv', "
              "step_timeout=600)\n"
              "vec.submit([EpisodeSpec(0, 1)]); vec.reset(); vec.step([np.zeros(7, np.float32)])\n"
              "print(vec.worker_pids[0], flush=True)\n"
              "vec.step([np.zeros(7, np.float32)])  # the worker now sleeps for 600 s\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root)
    try:
        worker = int(parent.stdout.readline())
        time.sleep(1.0)  # let the second step reach the worker
        assert not _gone(worker)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 20
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(worker), f"worker {worker} outlived its killed parent"
