"""Training the (method, seed) runs of a continual experiment in parallel worker processes (``jobs > 1``).

Every (method, seed) pipeline is independent once the warm-up and the starting model's evaluations exist, so they
can run side by side, one fresh ``spawn`` process each (torch's thread settings and global RNG state are per
process). A worker re-reads the experiment, re-plans it and runs its pipeline; everything it produces is on disk
(the pipeline's state file, matrix, ``continual_log.json``), so the parent then walks every run in order as a
*resume*: finished stages and evaluations are skipped and ``results.json`` is assembled exactly as in a sequential
run. Results therefore do not depend on ``jobs``: each run has its own seed and touches only its own folder.

Runs are started longest first (RL methods sample rollouts; their stages cost several times an SFT stage), so the
last worker to finish is not one that started last. A worker's console output goes to ``<run_dir>/worker.log``; a
failed worker is reported with that path and the error, after the other workers have finished.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from mmsft.config import ConfigError

WORKER_LOG = "worker.log"
_COST_ORDER = {"rft": 0, "rif_rft": 1, "past": 2, "multitask": 3, "sft_lora": 4, "sft": 5}
"""Start order by method kind: the most expensive first (unknown kinds go between RL and SFT methods)."""


def launch_order(runs: list[Any]) -> list[Any]:
    """The planned runs, most expensive method kind first; seeds and the experiment's method order break ties."""
    return sorted(runs, key=lambda r: (_COST_ORDER.get(r.method.method, 2), r.seed))


def _worker(source: Any, overrides: list[str] | None, start_model: str, method: str, seed: int) -> list[str]:
    """Run one (method, seed) pipeline in this process (its console output goes to ``worker.log`` in its folder);
    returns the stages it trained."""
    from mmsft.continual.runner import ContinualPipeline, plan_runs
    from mmsft.continual.spec import load_experiment

    spec = load_experiment(source, overrides)
    planned = next(r for r in plan_runs(spec, start_model) if r.method.name == method and r.seed == seed)
    run_dir = spec.run_dir(method, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / WORKER_LOG, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the worker
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        pipeline = ContinualPipeline(planned.pipeline, planned.plan.hooks, spec.defaults, seed,
                                     spec.keep_checkpoints, quiet=False)
        result = pipeline.run()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        raise
    return list(result.trained)


def train_in_parallel(source: Any, overrides: list[str] | None, runs: list[Any], start_model: str, jobs: int,
                      console: Any) -> dict[tuple[str, int], list[str]]:
    """Train every planned run in up to ``jobs`` worker processes and return ``{(method, seed): stages trained}``;
    a failed run raises one line (after all workers end) naming the run, the error and its ``worker.log``."""
    failures: list[str] = []
    trained: dict[tuple[str, int], list[str]] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {}
        for planned in launch_order(runs):
            future = pool.submit(_worker, source, overrides, start_model, planned.method.name, planned.seed)
            futures[future] = planned
            console.print(f"  queued {planned.method.name} · seed {planned.seed} "
                          f"(log: {Path(planned.pipeline.output_dir) / WORKER_LOG})")
        for future in as_completed(futures):
            planned = futures[future]
            where = Path(planned.pipeline.output_dir) / WORKER_LOG
            try:
                trained[(planned.method.name, planned.seed)] = future.result()
                console.print(f"  finished {planned.method.name} · seed {planned.seed}")
            except Exception as exc:  # noqa: BLE001 - reported per run below
                failures.append(f"{planned.method.name} seed {planned.seed}: {type(exc).__name__}: {exc} "
                                f"(full log: {where})")
    if failures:
        raise RuntimeError("continual runs failed in worker processes: " + "; ".join(failures))
    return trained


def check_jobs(jobs: int) -> int:
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r}: expected a whole number of worker processes >= 1")
    return jobs


__all__ = ["WORKER_LOG", "check_jobs", "launch_order", "train_in_parallel"]
