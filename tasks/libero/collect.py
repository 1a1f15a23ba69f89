"""Record LIBERO demonstrations (Python API behind ``mmsft data collect-libero``); format in :mod:`.episodes`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from envs.libero.vector import LiberoVectorEnv
from tasks.libero.episodes import append_index, write_episode
from tasks.libero.evaluate import check_run_settings, episode_specs
from tasks.libero.policies import LoadedPolicy
from tasks.libero.rollout import EpisodeRecord, run_episodes


@dataclass
class CollectConfig:
    """Settings of one collection run (every field is a CLI flag of ``mmsft data collect-libero``)."""

    suite: str = "libero_spatial"
    tasks: tuple[int, ...] | None = None
    episodes_per_task: int = 10
    init_offset: int = 0
    workers: int = 1
    backend: str = "process"  # process | ray (see envs.libero.vector.LiberoVectorEnv)
    image_size: int = 128
    cameras: tuple[str, ...] = ("agentview", "wrist")
    render: str = "fast"
    max_episode_steps: int | None = None
    successes_only: bool = False
    step_timeout: float = 120.0
    reset_timeout: float = 600.0
    out_dir: Path = field(default_factory=lambda: Path("data/libero_oracle"))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field, its value and what is expected."""
        check_run_settings(self.suite, self.tasks, self.cameras, self.render, self.workers)
        if self.episodes_per_task < 1:
            raise ValueError(f"episodes_per_task={self.episodes_per_task}; expected >= 1")
        if self.init_offset < 0:
            raise ValueError(f"init_offset={self.init_offset}; expected >= 0")
        index = Path(self.out_dir) / "index.jsonl"
        if index.exists():
            raise ValueError(f"out_dir={self.out_dir}: {index} already exists; choose a new folder")


def collect(
    policy: LoadedPolicy,
    cfg: CollectConfig,
    progress: Callable[[EpisodeRecord, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run episodes ``k = 0..episodes_per_task-1`` (init state ``init_offset + k``) per task and write them;
    returns counts."""
    cfg.validate()
    from envs.libero.suites import num_tasks

    tasks = tuple(cfg.tasks) if cfg.tasks is not None else tuple(range(num_tasks(cfg.suite)))
    specs = episode_specs(cfg.suite, tasks, cfg.episodes_per_task, cfg.init_offset)
    root = Path(cfg.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    meta.update(policy=policy.name, format="mmsft-libero-episodes-v1")
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    counts = {"episodes": 0, "written": 0, "successes": 0, "faults": 0}

    def on_episode(record: EpisodeRecord) -> None:
        r = record.result
        counts["episodes"] += 1
        counts["successes"] += int(r.success)
        faulted = r.reason.startswith("fault")
        counts["faults"] += int(faulted)
        keep = not faulted and record.actions and (r.success or not cfg.successes_only)
        if keep:
            row = write_episode(
                root,
                suite=cfg.suite,
                task_id=r.task_id,
                init_state=r.init_state,
                episode_id=r.episode_id,
                instruction=record.instruction,
                success=r.success,
                images=record.images,
                proprio=record.proprio,
                actions=record.actions,
                rewards=record.rewards,
            )
            append_index(root, row)
            counts["written"] += 1
        if progress is not None:
            progress(record, counts["episodes"], len(specs))

    env_kwargs = dict(
        suite=cfg.suite,
        image_size=cfg.image_size,
        cameras=cfg.cameras,
        render=cfg.render,
        max_episode_steps=cfg.max_episode_steps,
        privileged=policy.privileged,
    )
    with LiberoVectorEnv(
        cfg.workers, env_kwargs, step_timeout=cfg.step_timeout, reset_timeout=cfg.reset_timeout,
        backend=cfg.backend
    ) as vec:
        run_episodes(vec, policy.factory, specs, on_episode, record_steps=True, record_images=bool(cfg.cameras),
                     batched=policy.batched)
    return counts
