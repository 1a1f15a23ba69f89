"""On-disk format of recorded LIBERO episodes (written by ``mmsft data collect-libero``), with a reader.

Layout of a dataset folder::

    DATASET/
      index.jsonl                        one JSON object per episode (see INDEX_FIELDS), in completion order
      meta.json                          how the data was recorded (suite, cameras, image size, render, policy)
      episodes/
        <suite>_task<TT>_init<KK>_ep<NNNNN>.npz

Each ``.npz`` (``numpy.savez_compressed``) holds, for an episode of ``T`` policy steps:

    ``images_<camera>``  uint8   (T, H, W, 3)   upright frames the action was taken on (one key per camera)
    ``proprio``          float32 (T, 8)         eef position, eef axis-angle, gripper qpos
    ``actions``          float32 (T, 7)         OSC deltas + gripper (-1 open, +1 close), in [-1, 1]
    ``rewards``          float32 (T,)           sparse success reward
    ``instruction``      str                    0-d unicode array
    ``success``          bool                   0-d array
    ``suite``, ``task_id``, ``init_state``      0-d arrays

Step ``t`` pairs observation ``t`` with action ``t`` (behaviour-cloning order). ``index.jsonl`` rows carry
``file`` (relative path), ``suite``, ``task_id``, ``init_state``, ``instruction``, ``success``, ``num_steps``,
``cameras`` and ``image_size``, so a trainer can filter without opening the arrays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np

INDEX_FIELDS = ("file", "suite", "task_id", "init_state", "instruction", "success", "num_steps", "cameras", "image_size")
ARRAY_KEYS = ("proprio", "actions", "rewards")


def episode_filename(suite: str, task_id: int, init_state: int, episode_id: int) -> str:
    return f"{suite}_task{task_id:02d}_init{init_state:02d}_ep{episode_id:05d}.npz"


def write_episode(
    root: Path,
    *,
    suite: str,
    task_id: int,
    init_state: int,
    episode_id: int,
    instruction: str,
    success: bool,
    images: dict[str, list[np.ndarray]],
    proprio: list[np.ndarray],
    actions: list[np.ndarray],
    rewards: list[float],
) -> dict[str, Any]:
    """Write one episode's ``.npz`` under ``root/episodes`` and return its index row (not yet appended)."""
    steps = len(actions)
    if len(proprio) != steps or len(rewards) != steps:
        raise ValueError(
            f"episode {episode_id}: {steps} actions but {len(proprio)} proprio rows and {len(rewards)} rewards"
        )
    for cam, frames in images.items():
        if len(frames) != steps:
            raise ValueError(f"episode {episode_id}: camera {cam!r} has {len(frames)} frames for {steps} actions")
    rel = Path("episodes") / episode_filename(suite, task_id, init_state, episode_id)
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "proprio": np.asarray(proprio, dtype=np.float32).reshape(steps, 8),
        "actions": np.asarray(actions, dtype=np.float32).reshape(steps, 7),
        "rewards": np.asarray(rewards, dtype=np.float32).reshape(steps),
        "instruction": np.array(instruction),
        "success": np.array(bool(success)),
        "suite": np.array(suite),
        "task_id": np.array(int(task_id)),
        "init_state": np.array(int(init_state)),
    }
    image_size = 0
    for cam, frames in images.items():
        stacked = np.asarray(frames, dtype=np.uint8)
        arrays[f"images_{cam}"] = stacked
        image_size = int(stacked.shape[1]) if stacked.ndim == 4 else image_size
    np.savez_compressed(root / rel, **arrays)
    return {
        "file": str(rel),
        "suite": suite,
        "task_id": int(task_id),
        "init_state": int(init_state),
        "instruction": instruction,
        "success": bool(success),
        "num_steps": steps,
        "cameras": sorted(images),
        "image_size": image_size,
    }


def append_index(root: Path, row: dict[str, Any]) -> None:
    """Append one row to ``root/index.jsonl``."""
    with open(root / "index.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def read_index(root: Path) -> list[dict[str, Any]]:
    """All rows of ``root/index.jsonl``; raises ``FileNotFoundError`` naming the folder if it is missing."""
    path = Path(root) / "index.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{root} is not a LIBERO episode dataset: {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_episode(path: Path) -> dict[str, Any]:
    """Load one ``.npz`` episode into plain Python/numpy values (``images`` as {camera: (T,H,W,3)})."""
    with np.load(path, allow_pickle=False) as data:
        episode: dict[str, Any] = {key: data[key] for key in ARRAY_KEYS}
        episode["images"] = {k[len("images_"):]: data[k] for k in data.files if k.startswith("images_")}
        episode["instruction"] = str(data["instruction"])
        episode["success"] = bool(data["success"])
        episode["suite"] = str(data["suite"])
        episode["task_id"] = int(data["task_id"])
        episode["init_state"] = int(data["init_state"])
    return episode


def iter_episodes(root: Path, successes_only: bool = False) -> Iterator[dict[str, Any]]:
    """Yield loaded episodes listed in ``root/index.jsonl`` (optionally only successful ones)."""
    root = Path(root)
    for row in read_index(root):
        if successes_only and not row["success"]:
            continue
        yield load_episode(root / row["file"])
