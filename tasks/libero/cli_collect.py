"""``mmsft data collect-libero``: record oracle (or any policy's) episodes for training.

Example::

    mmsft data collect-libero --suite libero_spatial --tasks 0-3 --episodes-per-task 20 --workers 2 \
        --image-size 128 --render fast --successes-only --out data/libero_spatial_oracle

Format (one compressed .npz per episode + index.jsonl + meta.json) is documented in
``tasks/libero/episodes.py`` and docs/libero.md. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tasks.libero.cli_eval import add_env_arguments, resolve_env_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", default="oracle",
        help="'oracle' (default: scripted, privileged poses), 'mmsft:MODEL_DIR' or 'package.module:callable'",
    )
    add_env_arguments(parser, image_size=128, render="fast")
    parser.add_argument("--episodes-per-task", type=int, default=10, help="episode k of a task uses init state k")
    parser.add_argument("--successes-only", action="store_true", help="write successful episodes only")
    parser.add_argument("--out", type=Path, required=True, help="new dataset folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines instead)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tasks.libero.collect import CollectConfig, collect
    from tasks.libero.policies import load_policy
    from tasks.libero.progress import episode_progress

    console = Console(stderr=True)
    try:
        policy = load_policy(args.policy, args.policy_temperature, args.policy_seed)
    except (ValueError, ImportError) as exc:
        console.print(f"[red]collect-libero: {exc}[/red]")
        return 2
    resolve_env_settings(args, policy.requirements)
    cfg = CollectConfig(
        suite=args.suite,
        tasks=args.tasks,
        episodes_per_task=args.episodes_per_task,
        init_offset=args.init_offset,
        workers=args.workers,
        backend=args.backend,
        image_size=args.image_size,
        cameras=args.cameras,
        render=args.render,
        max_episode_steps=args.max_steps,
        successes_only=args.successes_only,
        step_timeout=args.step_timeout,
        reset_timeout=args.reset_timeout,
        out_dir=args.out,
    )
    try:
        cfg.validate()
    except ValueError as exc:
        console.print(f"[red]collect-libero: {exc}[/red]")
        return 2
    with episode_progress(console, f"collect {args.suite}", enabled=not args.no_progress) as on_episode:
        counts = collect(policy, cfg, progress=on_episode)
    console.print(
        f"{counts['written']} episodes written to {args.out} ({counts['successes']}/{counts['episodes']} "
        f"successful, {counts['faults']} faults); index: {args.out / 'index.jsonl'}"
    )
    return 0
