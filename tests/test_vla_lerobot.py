"""LeRobot v3.0 export and import (pyarrow + PyAV, no lerobot install): the layout, a lossless round trip into the
same dataset view, a lossy H.264 export, and errors naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmsft.data.schema import DataError
from tasks.libero.dataset import load_episodes
from tasks.libero.episodes import load_episode, read_index
from tasks.libero.lerobot import export_lerobot, import_lerobot
from tests.test_vla_data import STEPS, make_episodes


def test_lossless_round_trip_into_the_same_dataset_view(tmp_path):
    demos = make_episodes(tmp_path / "demos")
    info = export_lerobot(demos, tmp_path / "lerobot", codec="libx264rgb")
    root = tmp_path / "lerobot"
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 3 and info["total_frames"] == sum(STEPS)
    for rel in ("meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
                "data/chunk-000/file-000.parquet", "videos/observation.images.agentview/chunk-000/file-000.mp4",
                "videos/observation.images.wrist/chunk-000/file-000.mp4"):
        assert (root / rel).is_file(), rel
    import pandas as pd

    tasks = pd.read_parquet(root / "meta" / "tasks.parquet")
    assert list(tasks.index) == ["Pick up bowl 0.", "Pick up bowl 1."] and list(tasks["task_index"]) == [0, 1]
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert len(stats["action"]["q01"]) == 7 and stats["observation.state"]["count"] == [sum(STEPS)]

    assert import_lerobot(root, tmp_path / "back") == 3
    for a, b in zip(read_index(demos), read_index(tmp_path / "back")):
        x, y = load_episode(demos / a["file"]), load_episode(tmp_path / "back" / b["file"])
        np.testing.assert_array_equal(x["actions"], y["actions"])
        np.testing.assert_array_equal(x["proprio"], y["proprio"])
        np.testing.assert_array_equal(x["rewards"], y["rewards"])
        for camera in ("agentview", "wrist"):
            np.testing.assert_array_equal(x["images"][camera], y["images"][camera])  # lossless RGB video
        assert x["instruction"] == y["instruction"]
    original = load_episodes(demos, {"chunk": 2}, "train")
    again = load_episodes(tmp_path / "back", {"chunk": 2}, "train")
    assert len(original) == len(again)
    for k in (0, 5, len(again) - 1):
        assert original[k].actions == again[k].actions
        np.testing.assert_array_equal(original[k].messages[0].parts[0].array, again[k].messages[0].parts[0].array)


def test_lossy_export_and_bad_datasets(tmp_path):
    demos = make_episodes(tmp_path / "demos", steps=(4, 6), tasks=(0, 0))
    export_lerobot(demos, tmp_path / "h264")
    assert import_lerobot(tmp_path / "h264", tmp_path / "back") == 2
    episode = load_episode(tmp_path / "back" / read_index(tmp_path / "back")[1]["file"])
    assert episode["images"]["agentview"].shape == (6, 16, 16, 3)
    with pytest.raises(DataError, match="already exists"):
        export_lerobot(demos, tmp_path / "h264")
    info_path = tmp_path / "h264" / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(DataError, match="codebase_version 'v2.1'"):
        import_lerobot(tmp_path / "h264", tmp_path / "x")
    info["features"]["action"]["shape"] = [6]
    info_path.write_text(json.dumps(info))
    with pytest.raises(DataError, match="'action' must have shape \\[7\\]"):
        import_lerobot(tmp_path / "h264", tmp_path / "y")
    info["features"]["action"]["shape"] = [7]
    info_path.write_text(json.dumps(info))
    (tmp_path / "h264" / "videos" / "observation.images.wrist" / "chunk-000" / "file-000.mp4").write_bytes(b"x")
    with pytest.raises(DataError, match="file-000.mp4: cannot decode"):
        import_lerobot(tmp_path / "h264", tmp_path / "z")
