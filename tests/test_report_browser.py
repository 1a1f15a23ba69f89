"""report.html in a real browser: headless Chromium (Debian's ``chromium``; ``bash scripts/setup.sh --browser``) renders
the page offline; the screenshot is not blank and shows the embedded curves and rollout image, and the rendered DOM
has every main section. Skipped when Chromium is not installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from mmsft.report import build_report

pytestmark = pytest.mark.browser
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
RED = (220, 30, 30)
CURVE_BLUE = (0x34, 0x65, 0xA4)  # the curve colour of mmsft.report.figures


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _run_folder(root: Path) -> Path:
    """A run folder as the RL trainer leaves it: config, 30 steps of metrics, a rollout whose prompt has an image."""
    root.mkdir()
    (root / "config.yaml").write_text(yaml.safe_dump({"stage": "rl", "algorithm": "grpo", "optim": {"lr": 1e-5}}))
    records = [{"step": s, "train/loss": 1.0 / s, "reward/total": s / 30, "train/accuracy": min(1.0, s / 20)}
               for s in range(1, 31)]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (root / "rollouts").mkdir()
    Image.new("RGB", (64, 64), RED).save(root / "rollouts" / "board.png")
    row = {"messages": [{"role": "user", "content": [{"type": "image", "image": "board.png"},
                                                     {"type": "text", "text": "Which colour is the board?"}]},
                        {"role": "assistant", "content": "red"}], "reward": 1.0}
    (root / "rollouts" / "batch-000000.jsonl").write_text(json.dumps(row) + "\n")
    return root


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (bash scripts/setup.sh --browser)")
def test_report_renders_in_headless_chromium(tmp_path):
    report = build_report(_run_folder(tmp_path / "run"))
    url = report.resolve().as_uri()
    shot = tmp_path / "shot.png"
    done = _chromium(tmp_path, "--window-size=1280,2600", f"--screenshot={shot}", url)
    assert shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    assert pixels.std() > 20 and len(np.unique(pixels, axis=0)) > 50  # not a blank page
    for colour, what in ((RED, "the rollout's image"), (CURVE_BLUE, "the curves")):
        close = (np.abs(pixels - np.array(colour)).max(axis=1) <= 12).sum()
        assert close > 100, f"{what} not visible in the screenshot ({close} pixels of {colour})"
    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    for heading in ("<h2>Summary</h2>", "<h2>Curves</h2>", "<h2>Samples</h2>", "<h2>Config</h2>",
                    "<h2>Environment</h2>"):
        assert heading in dom, heading
    assert "Which colour is the board?" in dom
