"""LIBERO suites: names, paper step limits, camera names and task metadata.

The constants are plain Python. :func:`task_spec` imports the installed ``libero`` package (any of the PyPI
variants exposing ``libero.libero.benchmark``) lazily and caches the result.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass

import numpy as np

# Max policy steps per episode used by the published protocol (OpenVLA run_libero_eval.py and its copies).
SUITE_MAX_STEPS: dict[str, int] = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}
SUITES: tuple[str, ...] = tuple(SUITE_MAX_STEPS)

# Our camera names -> robosuite camera names.
CAMERA_NAMES: dict[str, str] = {"agentview": "agentview", "wrist": "robot0_eye_in_hand"}

NUM_SETTLE_STEPS = 10
PAPER_RENDER_SIZE = 256
PAPER_IMAGE_SIZE = 224


@dataclass(frozen=True)
class TaskSpec:
    """One LIBERO task: where its scene is defined and what the robot is told."""

    suite: str
    task_id: int
    name: str
    instruction: str
    bddl_file: str
    num_init_states: int


def check_suite(suite: str) -> str:
    """Return ``suite`` if it is a standard suite, else raise ``ValueError`` naming the valid ones."""
    if suite not in SUITE_MAX_STEPS:
        raise ValueError(f"suite={suite!r} is not a LIBERO suite; expected one of {list(SUITES)}")
    return suite


def check_cameras(cameras: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate camera names (``agentview``, ``wrist``); an empty tuple means physics only (no rendering)."""
    cams = tuple(cameras)
    unknown = [c for c in cams if c not in CAMERA_NAMES]
    if unknown:
        raise ValueError(f"cameras={cams!r}: unknown {unknown}; expected a subset of {list(CAMERA_NAMES)}")
    if len(set(cams)) != len(cams):
        raise ValueError(f"cameras={cams!r}: each camera may appear once")
    return cams


@functools.lru_cache(maxsize=None)
def _benchmark(suite: str):  # -> libero.libero.benchmark.Benchmark
    from envs.libero.headless import configure_headless

    configure_headless()
    from libero.libero import benchmark

    with contextlib.redirect_stdout(io.StringIO()):  # the benchmark prints its task order on construction
        return benchmark.get_benchmark_dict()[suite]()


def num_tasks(suite: str) -> int:
    """Number of tasks in ``suite`` (10 for spatial/object/goal/10, 90 for libero_90)."""
    return int(_benchmark(check_suite(suite)).get_num_tasks())


def check_task_ids(suite: str, task_ids: tuple[int, ...] | list[int] | None) -> None:
    """Raise ``ValueError`` if any id is outside the suite's tasks (None means all tasks and is always valid)."""
    if task_ids is None:
        return
    n = num_tasks(suite)
    bad = [t for t in task_ids if not 0 <= int(t) < n]
    if bad or not task_ids:
        raise ValueError(f"tasks={list(task_ids)}: {suite} has task ids 0..{n - 1}; got out of range {bad}")


@functools.lru_cache(maxsize=None)
def task_spec(suite: str, task_id: int) -> TaskSpec:
    """Metadata of task ``task_id`` of ``suite``; raises ``ValueError`` for an unknown suite or task id."""
    bench = _benchmark(check_suite(suite))
    n = bench.get_num_tasks()
    if not isinstance(task_id, (int, np.integer)) or not 0 <= int(task_id) < n:
        raise ValueError(f"task_id={task_id!r} out of range for {suite}; expected an int in [0, {n})")
    task = bench.get_task(int(task_id))
    from libero.libero import get_libero_path

    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    return TaskSpec(
        suite=suite,
        task_id=int(task_id),
        name=task.name,
        instruction=task.language,
        bddl_file=bddl,
        num_init_states=int(len(init_states(suite, int(task_id)))),
    )


@functools.lru_cache(maxsize=32)
def init_states(suite: str, task_id: int) -> np.ndarray:
    """The stored init states (flattened MuJoCo states, one row each) of a task; read-only."""
    states = np.asarray(_benchmark(check_suite(suite)).get_task_init_states(int(task_id)))
    states.setflags(write=False)
    return states
