"""The example scripts under scripts/examples/ run end to end on the embedded tiny model (``--quick --max-steps 2``),
with ``python`` and with ``accelerate launch``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "scripts" / "examples"


def _run(command: list[str], tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.mark.parametrize("script", ["video_cot_sft.py", "video_grpo.py", "video_eval.py"])
def test_example_runs(script, tmp_path):
    out = tmp_path / "out"
    stdout = _run([sys.executable, str(EXAMPLES / script), "--quick", "--max-steps", "2", "--out", str(out)], tmp_path)
    if script == "video_eval.py":
        metrics = json.loads(stdout[stdout.index("{"):])
        assert metrics["n"] == 14 and 0 <= metrics["accuracy"] <= 1 and "accuracy/type/OCR" in metrics
        assert (out / "eval" / "predictions.jsonl").is_file()
    else:
        assert "trained 2 steps on 1 process(es)" in stdout
        assert (out / "run" / "final" / "config.json").is_file()
        if script == "video_grpo.py":
            record = json.loads((out / "run" / "metrics.jsonl").read_text().splitlines()[0])
            assert "reward/videorft_semantic" in record and "reward/videorft_accuracy" in record


def test_example_under_accelerate_launch(tmp_path):
    pytest.importorskip("accelerate")
    out = tmp_path / "out"
    stdout = _run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   str(EXAMPLES / "video_cot_sft.py"), "--quick", "--max-steps", "2", "--out", str(out)], tmp_path)
    assert "trained 2 steps on 2 process(es)" in stdout
    assert (out / "run" / "final" / "config.json").is_file()
