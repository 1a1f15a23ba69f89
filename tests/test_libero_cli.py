"""LIBERO task layer: policy loading, reports, episode format, and the two CLI commands end to end.

The CLI tests run the real simulator in worker processes (skipped without the ``[libero]`` extra); the rest is
plain Python.
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import pytest

from envs.libero.vector import EpisodeResult
from tasks.libero.cli_eval import parse_cameras, parse_task_list
from tasks.libero.episodes import iter_episodes, load_episode, read_index, write_episode, append_index
from tasks.libero.policies import load_policy
from tasks.libero.report import summarize, to_markdown

pytestmark = pytest.mark.libero


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


HAS_LIBERO = _installed("robosuite") and _installed("libero")
needs_sim = pytest.mark.skipif(not HAS_LIBERO, reason="needs the [libero] extra (scripts/install_libero.sh)")


class CountingPolicy:
    """A zero-argument class: load_policy treats it as a factory (one instance per worker slot)."""

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def __call__(self, obs, info):
        return np.zeros(7)


def stateless_policy(obs, info):
    return [0, 0, 0, 0, 0, 0, -1]


def test_policy_specs() -> None:
    oracle = load_policy("oracle")
    assert oracle.privileged and callable(oracle.factory())
    cls = load_policy(f"{__name__}:CountingPolicy")
    first, second = cls.factory(), cls.factory()
    assert isinstance(first, CountingPolicy) and first is not second
    fn = load_policy(f"{__name__}:stateless_policy")
    assert fn.factory() is stateless_policy
    with pytest.raises(ValueError, match="module:callable"):
        load_policy("no_colon_here")
    with pytest.raises(ValueError, match="has no attribute"):
        load_policy(f"{__name__}:missing")


def test_cli_argument_parsers() -> None:
    assert parse_task_list("all") is None
    assert parse_task_list("0,3,5-7,3") == (0, 3, 5, 6, 7)
    assert parse_cameras("none") == () and parse_cameras("wrist,agentview") == ("wrist", "agentview")
    with pytest.raises(argparse.ArgumentTypeError, match="--tasks"):
        parse_task_list("3-1")
    with pytest.raises(argparse.ArgumentTypeError, match="--cameras"):
        parse_cameras("frontview")


def test_summary_and_markdown() -> None:
    results = [
        EpisodeResult(0, 0, 0, None, True, 120, 1.0, "success", 0, 5.0),
        EpisodeResult(1, 0, 1, None, False, 220, 0.0, "step_limit", 1, 8.0),
        EpisodeResult(2, 1, 0, None, False, 3, 0.0, "fault: RuntimeError: boom", 0, 1.0),
    ]
    summary = summarize(results, "libero_spatial", {0: "task zero", 1: "task one"}, {"workers": 2})
    assert summary["episodes"] == 3 and summary["successes"] == 1 and summary["faults"] == 1
    assert [row["success_rate"] for row in summary["tasks"]] == [0.5, 0.0]
    md = to_markdown(summary)
    assert "| 0 | task zero | 1 | 2 | 50.0% |" in md and "**33.3%**" in md and "OpenVLA-OFT" in md


def test_episode_format_round_trip(tmp_path) -> None:
    frames = [np.full((8, 8, 3), t, np.uint8) for t in range(3)]
    row = write_episode(
        tmp_path, suite="libero_spatial", task_id=2, init_state=4, episode_id=7, instruction="do it",
        success=True, images={"agentview": frames}, proprio=[np.arange(8, dtype=np.float32)] * 3,
        actions=[np.ones(7, np.float32)] * 3, rewards=[0.0, 0.0, 1.0],
    )
    append_index(tmp_path, row)
    assert read_index(tmp_path) == [row] and row["num_steps"] == 3 and row["image_size"] == 8
    episode = load_episode(tmp_path / row["file"])
    assert episode["images"]["agentview"].shape == (3, 8, 8, 3) and episode["actions"].shape == (3, 7)
    assert episode["instruction"] == "do it" and episode["success"] and episode["init_state"] == 4
    assert len(list(iter_episodes(tmp_path, successes_only=True))) == 1
    with pytest.raises(ValueError, match="frames"):
        write_episode(
            tmp_path, suite="libero_spatial", task_id=0, init_state=0, episode_id=8, instruction="x",
            success=False, images={"agentview": frames[:2]}, proprio=[np.zeros(8)] * 3,
            actions=[np.zeros(7)] * 3, rewards=[0.0] * 3,
        )
    with pytest.raises(FileNotFoundError, match="not a LIBERO episode dataset"):
        read_index(tmp_path / "nowhere")


@pytest.mark.parametrize("fmt", ["gif", "mp4"])
def test_write_video(tmp_path, fmt: str) -> None:
    if fmt == "mp4":
        pytest.importorskip("imageio_ffmpeg", reason="MP4 needs imageio-ffmpeg (part of the [libero] extra)")
    from tasks.libero.video import write_video

    frames = [np.full((32, 32, 3), 10 * t, np.uint8) for t in range(5)]
    path = write_video(frames, tmp_path / f"episode.{fmt}")
    assert path.stat().st_size > 100
    with pytest.raises(ValueError, match="suffix"):
        write_video(frames, tmp_path / "episode.avi")


@needs_sim
def test_cli_eval_oracle(tmp_path, capsys) -> None:
    from mmsft.cli import main

    out = tmp_path / "eval"
    code = main([
        "eval-libero", "--policy", "oracle", "--suite", "libero_spatial", "--tasks", "0", "--trials-per-task", "1",
        "--workers", "1", "--cameras", "none", "--out", str(out), "--no-progress",
    ])
    assert code == 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["episodes"] == 1 and summary["successes"] == 1
    assert summary["results"][0]["init_state"] == 0 and summary["meta"]["max_episode_steps"] == 220
    assert "100.0%" in (out / "results.md").read_text() and "100.0%" in capsys.readouterr().out


@needs_sim
def test_cli_collect_oracle(tmp_path) -> None:
    from mmsft.cli import main

    out = tmp_path / "demos"
    code = main([
        "data", "collect-libero", "--suite", "libero_spatial", "--tasks", "0", "--episodes-per-task", "1",
        "--cameras", "agentview", "--image-size", "32", "--render", "fast", "--out", str(out), "--no-progress",
    ])
    assert code == 0
    rows = read_index(out)
    assert len(rows) == 1 and rows[0]["success"] and rows[0]["cameras"] == ["agentview"]
    episode = load_episode(out / rows[0]["file"])
    steps = rows[0]["num_steps"]
    assert episode["images"]["agentview"].shape == (steps, 32, 32, 3)
    assert episode["proprio"].shape == (steps, 8) and episode["actions"].shape == (steps, 7)
    assert episode["rewards"][-1] == 1.0 and episode["rewards"][:-1].sum() == 0
    assert json.loads((out / "meta.json").read_text())["policy"] == "oracle"
    # a second run into the same folder is refused with a clear message
    assert main(["data", "collect-libero", "--tasks", "0", "--out", str(out), "--no-progress"]) == 2
