"""Shared harness of the framework-vs-framework benchmarks: each (case, framework) runs in a fresh interpreter so
peak memory is per side, and the script re-invokes itself with ``--worker JOB --result FILE``."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

Worker = Callable[[dict], dict]
ROOT = Path(__file__).resolve().parent.parent  # the checkout whose mmsft is benchmarked (not an installed copy)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)


def serve_worker(args: argparse.Namespace, workers: dict[str, Worker]) -> bool:
    """In a worker process: run the job's framework and write its JSON result; True when this was a worker."""
    if not args.worker:
        return False
    job = json.loads(args.worker)
    Path(args.result).write_text(json.dumps(workers[job["framework"]](job)))
    return True


def run_worker(script: str, job: dict) -> dict:
    """Run one (case, framework) of ``script`` in a fresh interpreter; returns its JSON result or the error."""
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]), MKL_NUM_THREADS=str(job["threads"]),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    tag = f"{job['case']}_{job['framework']}"
    result_file = Path(job["work"]) / f"result_{tag}.json"
    result_file.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, script, "--worker", json.dumps(job), "--result", str(result_file)],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    (Path(job["work"]) / f"log_{tag}.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not result_file.exists():
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        error = lines[-1] if lines else f"exit code {proc.returncode}"
        return {"error": error[:300].replace("|", "/"), "process_wall_s": wall}
    result = json.loads(result_file.read_text())
    result["process_wall_s"] = wall
    return result


def matmul_peak_flops(dtype_name: str, n: int = 1024, seconds: float = 2.0) -> float:
    """Measured dense-matmul peak of this process's torch threads: FLOP per *CPU* second of an n×n×n matmul in
    ``dtype_name`` (float32 / bfloat16), best of repeated timed bursts. CPU time (not wall) so that other processes
    sharing the cores do not lower the peak; the CPU-MFU of a run divides its model FLOP per CPU second by this."""
    import torch

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best, spent = 0.0, 0.0
    while spent < seconds:
        start = time.process_time()
        for _ in range(5):
            a @ b
        elapsed = time.process_time() - start
        spent += elapsed
        best = max(best, 5 * 2 * n ** 3 / max(elapsed, 1e-9))
    return best


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"
