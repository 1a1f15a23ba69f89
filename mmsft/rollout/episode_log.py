"""Episode logs under ``<run>/rollouts/``: JSONL transcripts and, for tasks that render frames, GIFs (capped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mmsft.rollout.agent import Episode

MAX_GIF_FRAMES = 200  # a GIF keeps at most this many frames (the first ones)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def episode_record(episode: Episode, task: str, reward_mode: str) -> dict[str, Any]:
    """A JSON-able transcript of one episode (prompts, outputs, parse outcomes, per-turn rewards)."""
    return {
        "task": task, "seed": episode.seed, "group": episode.group, "slot": episode.slot,
        "success": episode.success, "return": episode.episode_return, "reward": episode.reward(reward_mode),
        "end": episode.end, **({"fault": episode.fault} if episode.fault else {}),
        "parse_failures": episode.parse_failures,
        "turns": [{"turn": t.turn, "prompt": t.prompt, "output": t.output, "outcome": t.outcome,
                   "action": _jsonable(t.action), "reward": t.reward, "new_tokens": t.new_tokens}
                  for t in episode.turns],
    }


def write_gif(path: Path, frames: list[np.ndarray], duration_ms: int = 400) -> Path:
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames[:MAX_GIF_FRAMES]]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path


def write_episode_logs(folder: Path, name: str, episodes: list[Episode], task: str, reward_mode: str,
                       max_transcripts: int, max_gifs: int) -> list[Path]:
    """``folder/name.jsonl`` with the first ``max_transcripts`` episodes and up to ``max_gifs`` GIFs; returns paths."""
    written: list[Path] = []
    if max_transcripts <= 0 and max_gifs <= 0:
        return written
    folder.mkdir(parents=True, exist_ok=True)
    if max_transcripts > 0:
        path = folder / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for episode in episodes[:max_transcripts]:
                handle.write(json.dumps(episode_record(episode, task, reward_mode), ensure_ascii=False) + "\n")
        written.append(path)
    gifs = [e for e in episodes if e.frames][:max(max_gifs, 0)]
    for episode in gifs:
        status = "success" if episode.success else "fail"
        written.append(write_gif(folder / f"{name}-ep{episode.slot}-{status}.gif", episode.frames))
    return written
