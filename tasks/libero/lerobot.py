"""LeRobot-format datasets (layout v3.0) to and from mmsft episode folders, with pyarrow and PyAV (no lerobot install).

LeRobot v3.0 (the robot community's standard) stores many episodes per file::

    meta/info.json                              codebase_version, fps, features (schema), path templates, totals
    meta/stats.json                             per-feature mean / std / min / max (and q01 / q99)
    meta/tasks.parquet                          task text (index) -> task_index
    meta/episodes/chunk-000/file-000.parquet    per episode: length, tasks, data and video file indices and ranges
    data/chunk-000/file-000.parquet             one row per frame: observation.state, action, timestamp,
                                                frame_index, episode_index, index, task_index
    videos/<video_key>/chunk-000/file-000.mp4   every episode's frames of one camera, concatenated

:func:`export_lerobot` writes an episode folder (``mmsft data collect-libero``) in that layout; cameras become
``observation.images.<camera>`` video features (H.264; ``codec="libx264rgb"`` is lossless RGB), the 8-D proprio
``observation.state``, the 7-D action ``action``. :func:`import_lerobot` reads such a dataset back into an episode
folder, so it trains through the same dataset view (loader ``libero_episodes``); LeRobot's LIBERO conversions name
the cameras ``image`` / ``wrist_image``, which map to ``agentview`` / ``wrist``. A dataset that does not fit (another
version, a missing feature, a frame count that contradicts its episode table) is an error naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mmsft.data.schema import DataError
from tasks.libero.episodes import append_index, load_episode, read_index, write_episode

VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
CAMERA_NAMES = {"agentview": "agentview", "wrist": "wrist", "image": "agentview", "wrist_image": "wrist"}


def _encode_video(frames: np.ndarray, path: Path, fps: int, codec: str) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        if codec == "libx264rgb":
            stream.pix_fmt, stream.options = "rgb24", {"crf": "0", "preset": "ultrafast"}
        else:
            stream.pix_fmt, stream.options = "yuv420p", {"crf": "18", "preset": "fast", "g": "2"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _decode_video(path: Path) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    except Exception as exc:  # PyAV raises several types for missing or corrupt files
        raise DataError(f"{path}: cannot decode the video ({type(exc).__name__}: {exc})") from None


def _stats(values: np.ndarray) -> dict[str, Any]:
    values = values.astype(np.float64)
    return {"mean": values.mean(0).tolist(), "std": values.std(0).tolist(), "min": values.min(0).tolist(),
            "max": values.max(0).tolist(), "q01": np.quantile(values, 0.01, axis=0).tolist(),
            "q99": np.quantile(values, 0.99, axis=0).tolist(), "count": [int(len(values))]}


def export_lerobot(episodes: Path, out: Path, fps: int = 20, codec: str = "libx264") -> dict[str, Any]:
    """Write the episode folder ``episodes`` as a LeRobot v3.0 dataset at ``out`` (a new folder); returns info."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    episodes, out = Path(episodes), Path(out)
    if out.exists():
        raise DataError(f"{out} already exists; choose a new folder for the LeRobot dataset")
    rows = read_index(episodes)
    if not rows:
        raise DataError(f"{episodes / 'index.jsonl'} lists no episodes")
    loaded = [load_episode(episodes / row["file"]) for row in rows]
    cameras = sorted(loaded[0]["images"])
    tasks: dict[str, int] = {}
    frames: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
    data: dict[str, list[Any]] = {k: [] for k in ("observation.state", "action", "timestamp", "frame_index",
                                                  "episode_index", "index", "task_index", "next.reward")}
    episode_rows: dict[str, list[Any]] = {k: [] for k in ("episode_index", "tasks", "length", "dataset_from_index",
                                                          "dataset_to_index", "data/chunk_index", "data/file_index",
                                                          "meta/episodes/chunk_index", "meta/episodes/file_index")}
    for c in cameras:
        for suffix in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"):
            episode_rows[f"videos/observation.images.{c}/{suffix}"] = []
    total = 0
    for e, episode in enumerate(loaded):
        n = len(episode["actions"])
        if sorted(episode["images"]) != cameras:
            raise DataError(f"{episodes / rows[e]['file']}: cameras {sorted(episode['images'])} differ from the "
                            f"first episode's {cameras}")
        task_index = tasks.setdefault(episode["instruction"], len(tasks))
        start_s = sum(len(x) for x in frames[cameras[0]]) / fps
        for c in cameras:
            frames[c].append(episode["images"][c])
            episode_rows[f"videos/observation.images.{c}/chunk_index"].append(0)
            episode_rows[f"videos/observation.images.{c}/file_index"].append(0)
            episode_rows[f"videos/observation.images.{c}/from_timestamp"].append(start_s)
            episode_rows[f"videos/observation.images.{c}/to_timestamp"].append(start_s + n / fps)
        data["observation.state"] += [v.astype(np.float32) for v in episode["proprio"]]
        data["action"] += [v.astype(np.float32) for v in episode["actions"]]
        data["timestamp"] += [np.float32(t / fps) for t in range(n)]
        data["frame_index"] += list(range(n))
        data["episode_index"] += [e] * n
        data["index"] += list(range(total, total + n))
        data["task_index"] += [task_index] * n
        data["next.reward"] += [float(r) for r in episode["rewards"]]
        for key, value in (("episode_index", e), ("tasks", [episode["instruction"]]), ("length", n),
                           ("dataset_from_index", total), ("dataset_to_index", total + n), ("data/chunk_index", 0),
                           ("data/file_index", 0), ("meta/episodes/chunk_index", 0), ("meta/episodes/file_index", 0)):
            episode_rows[key].append(value)
        total += n
    data_table = pa.table({
        "observation.state": pa.array([v.tolist() for v in data["observation.state"]], pa.list_(pa.float32(), 8)),
        "action": pa.array([v.tolist() for v in data["action"]], pa.list_(pa.float32(), 7)),
        "timestamp": pa.array(data["timestamp"], pa.float32()),
        "next.reward": pa.array(data["next.reward"], pa.float32()),
        **{k: pa.array(data[k], pa.int64()) for k in ("frame_index", "episode_index", "index", "task_index")}})
    (out / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(data_table, out / DATA_PATH.format(chunk_index=0, file_index=0))
    (out / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(episode_rows), out / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    import pandas as pd

    pd.DataFrame({"task_index": list(tasks.values())}, index=pd.Index(list(tasks), name="task")).to_parquet(
        out / "meta" / "tasks.parquet")
    features: dict[str, Any] = {}
    for c in cameras:
        video = np.concatenate(frames[c])
        _encode_video(video, out / VIDEO_PATH.format(video_key=f"observation.images.{c}", chunk_index=0,
                                                     file_index=0), fps, codec)
        features[f"observation.images.{c}"] = {
            "dtype": "video", "shape": list(video.shape[1:]), "names": ["height", "width", "channels"],
            "info": {"video.fps": fps, "video.codec": codec, "video.pix_fmt": "rgb24" if codec == "libx264rgb"
                     else "yuv420p", "video.height": int(video.shape[1]), "video.width": int(video.shape[2])}}
    features.update({
        "observation.state": {"dtype": "float32", "shape": [8], "names": ["eef_x", "eef_y", "eef_z", "eef_ax",
                                                                           "eef_ay", "eef_az", "grip_l", "grip_r"]},
        "action": {"dtype": "float32", "shape": [7], "names": ["dx", "dy", "dz", "droll", "dpitch", "dyaw",
                                                                "gripper"]},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        **{k: {"dtype": "int64", "shape": [1], "names": None}
           for k in ("frame_index", "episode_index", "index", "task_index")}})
    info = {"codebase_version": VERSION, "robot_type": "panda", "fps": fps, "total_episodes": len(loaded),
            "total_frames": total, "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500, "data_path": DATA_PATH, "video_path": VIDEO_PATH,
            "splits": {"train": f"0:{len(loaded)}"}, "features": features}
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    stats = {"observation.state": _stats(np.stack(data["observation.state"])),
             "action": _stats(np.stack(data["action"]))}
    (out / "meta" / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return info


def _read_table(path: Path) -> Any:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(f"{path} does not exist (expected a LeRobot {VERSION} dataset)")
    try:
        return pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None


def import_lerobot(source: Path, out: Path, suite: str = "lerobot") -> int:
    """Read the LeRobot v3.0 dataset ``source`` into a new episode folder ``out``; returns the episode count."""
    source, out = Path(source), Path(out)
    info_path = source / "meta" / "info.json"
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{info_path}: cannot read the LeRobot dataset info ({exc})") from None
    if info.get("codebase_version") != VERSION:
        raise DataError(f"{info_path}: codebase_version {info.get('codebase_version')!r}; this reader reads "
                        f"{VERSION}")
    features = info.get("features", {})
    for key, dim in (("observation.state", 8), ("action", 7)):
        if key not in features or list(features[key].get("shape", [])) != [dim]:
            raise DataError(f"{info_path}: feature {key!r} must have shape [{dim}] (LIBERO proprio / actions)")
    videos = {k: CAMERA_NAMES.get(k.rsplit(".", 1)[-1]) for k, v in features.items() if v.get("dtype") == "video"}
    unknown = [k for k, name in videos.items() if name is None]
    if unknown or not videos:
        raise DataError(f"{info_path}: video features {unknown or 'none'}; expected observation.images.<camera> "
                        f"with camera in {sorted(CAMERA_NAMES)}")
    episodes = _read_table(source / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    fps = float(info["fps"])
    data_cache: dict[str, Any] = {}
    video_cache: dict[str, np.ndarray] = {}
    if out.exists():
        raise DataError(f"{out} already exists; choose a new folder")
    out.mkdir(parents=True)
    (out / "meta.json").write_text(json.dumps({"format": "mmsft-libero-episodes-v1", "source": str(source),
                                               "lerobot_version": VERSION, "render": "unknown"}, indent=2) + "\n")
    for row in episodes:
        e = int(row["episode_index"])
        rel = info["data_path"].format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
        if rel not in data_cache:
            table = _read_table(source / rel).to_pydict()
            rows_of: dict[int, list[int]] = {}
            for i, ep in enumerate(table["episode_index"]):
                rows_of.setdefault(int(ep), []).append(i)
            data_cache[rel] = (table, rows_of)
        table, rows_of = data_cache[rel]
        picks = sorted(rows_of.get(e, []), key=lambda i: table["frame_index"][i])
        n = int(row["length"])
        if len(picks) != n:
            raise DataError(f"{source / rel}: episode {e} has {len(picks)} frames; meta/episodes says {n}")
        images = {}
        for key, camera in videos.items():
            vrel = info["video_path"].format(video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                                             file_index=row[f"videos/{key}/file_index"])
            if vrel not in video_cache:
                video_cache[vrel] = _decode_video(source / vrel)
            start = int(round(float(row[f"videos/{key}/from_timestamp"]) * fps))
            clip = video_cache[vrel][start:start + n]
            if len(clip) != n:
                raise DataError(f"{source / vrel}: episode {e} needs frames {start}..{start + n - 1}; the video has "
                                f"{len(video_cache[vrel])}")
            images[camera] = list(clip)
        actions = np.asarray([table["action"][i] for i in picks], np.float32)
        proprio = np.asarray([table["observation.state"][i] for i in picks], np.float32)
        rewards = [float(table["next.reward"][i]) for i in picks] if "next.reward" in table else [0.0] * n
        written = write_episode(out, suite=suite, task_id=int(table["task_index"][picks[0]]), init_state=e,
                                episode_id=e, instruction=str((row.get("tasks") or [""])[0]), success=True,
                                images=images, proprio=list(proprio), actions=list(actions), rewards=rewards)
        append_index(out, written)
    return len(episodes)
