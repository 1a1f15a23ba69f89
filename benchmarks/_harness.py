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
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
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
