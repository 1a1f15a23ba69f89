"""``mmsft eval-libero``: the standard LIBERO success-rate protocol for a policy.

Examples::

    mmsft eval-libero --policy oracle --suite libero_spatial --tasks 0 --trials-per-task 2 --workers 2 \
        --cameras none --out runs/oracle_spatial
    mmsft eval-libero --policy my_pkg.policies:MyVLA --suite libero_spatial --trials-per-task 50 --workers 8 \
        --video mp4
    mmsft eval-libero --policy mmsft:runs/vla/final --suite libero_spatial --tasks 0 --trials-per-task 10 \
        --init-offset 40 --workers 2 --video gif     # a trained VLA folder on held-out init states 40-49

Writes ``results.json`` and ``results.md`` (per-task and suite success) and, with ``--video``, one MP4/GIF per
episode under ``OUT/videos``. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SUITE_CHOICES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")


def parse_task_list(text: str) -> tuple[int, ...] | None:
    """``all`` -> None; ``0,3,5-7`` -> (0, 3, 5, 6, 7). Raises ``argparse.ArgumentTypeError`` on bad input."""
    if text.strip().lower() == "all":
        return None
    ids: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                ids.extend(range(lo, hi + 1))
            else:
                ids.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tasks {text!r}: expected 'all' or ids like '0,3,5-7'") from None
    if any(i < 0 for i in ids):
        raise argparse.ArgumentTypeError(f"--tasks {text!r}: task ids must be >= 0")
    return tuple(dict.fromkeys(ids))


def parse_cameras(text: str) -> tuple[str, ...]:
    """``none`` -> () (physics only); ``agentview,wrist`` -> ("agentview", "wrist")."""
    if text.strip().lower() == "none":
        return ()
    cams = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in cams if c not in ("agentview", "wrist")]
    if bad or not cams:
        raise argparse.ArgumentTypeError(f"--cameras {text!r}: expected 'none' or a list from agentview,wrist")
    return cams


def add_env_arguments(parser: argparse.ArgumentParser, image_size: int, render: str) -> None:
    """Flags shared by eval-libero and data collect-libero. Image size, cameras and render default to what an
    ``mmsft:`` policy was trained with (see :func:`resolve_env_settings`), else to ``image_size`` / both cameras /
    ``render``."""
    parser.add_argument("--suite", default="libero_spatial", choices=SUITE_CHOICES, help="LIBERO suite")
    parser.add_argument("--tasks", type=parse_task_list, default=None, help="task ids: 'all' (default) or '0,3,5-7'")
    parser.add_argument("--init-offset", type=int, default=0,
                        help="episode k of a task starts from init state OFFSET+k (held-out init states)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one simulator each)")
    parser.add_argument("--backend", choices=("process", "ray"), default="process",
                        help="process: spawn workers on this machine; ray: Ray actors in the cluster of "
                             "RAY_ADDRESS or a local one (pip install 'mmsft[ray]')")
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"side of the observed images (default: the policy's, else {image_size})")
    parser.add_argument(
        "--cameras", type=parse_cameras, default=None,
        help="comma list from agentview,wrist; 'none' for physics only (default: the policy's, else both)",
    )
    parser.add_argument(
        "--render", choices=("fast", "paper"), default=None,
        help=f"paper: 256 px default quality resized (published protocol); fast: no shadows/reflections/MSAA "
             f"(default: the policy's, else {render})",
    )
    parser.set_defaults(_default_image_size=image_size, _default_render=render)
    parser.add_argument("--policy-temperature", type=float, default=0.0,
                        help="sampling temperature of an mmsft: policy (0: greedy, the published protocol)")
    parser.add_argument("--policy-seed", type=int, default=0, help="sampling seed of an mmsft: policy")
    parser.add_argument("--max-steps", type=int, default=None, help="override the suite's paper step limit")
    parser.add_argument("--step-timeout", type=float, default=120.0, help="seconds before a stuck worker is killed")
    parser.add_argument("--reset-timeout", type=float, default=600.0, help="seconds allowed for build + reset")


def resolve_env_settings(args: argparse.Namespace, requirements: dict | None) -> None:
    """Fill unset --image-size / --cameras / --render from the policy's requirements, else the command defaults."""
    req = requirements or {}
    if args.image_size is None:
        args.image_size = int(req.get("image_size", args._default_image_size))
    if args.cameras is None:
        args.cameras = tuple(req.get("cameras", ("agentview", "wrist")))
    if args.render is None:
        args.render = str(req.get("render", args._default_render))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", required=True,
        help="'oracle' (scripted, privileged poses), 'mmsft:MODEL_DIR' (a trained VLA folder) or "
             "'package.module:callable' (a factory or an (obs, info) policy)",
    )
    add_env_arguments(parser, image_size=224, render="paper")
    parser.add_argument("--overlap", action="store_true", help="batched (mmsft:) policy, >= 2 workers: the model "
                        "computes one half of the slots' actions while the other half's simulators step")
    parser.add_argument("--trials-per-task", type=int, default=50, help="episodes per task; episode k uses init state k")
    parser.add_argument("--protocol", choices=("openvla", "lerobot"), default="openvla",
                        help="openvla: one pass (the published OpenVLA/RLinf numbers); lerobot: the episodes once per "
                             "seed 1000, 2000, 3000 (LeRobot uses 10 trials per task)")
    parser.add_argument("--video", choices=("none", "mp4", "gif"), default="none", help="write one video per episode")
    parser.add_argument("--video-camera", default="agentview", choices=("agentview", "wrist"), help="camera to record")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/eval_libero/SUITE-TIME)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines instead)")


def run(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console

    from tasks.libero.evaluate import EvalConfig, check_requirements, evaluate
    from tasks.libero.policies import load_policy
    from tasks.libero.progress import episode_progress
    from tasks.libero.report import to_markdown

    console = Console(stderr=True)
    out = args.out or Path("runs/eval_libero") / f"{args.suite}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        policy = load_policy(args.policy, args.policy_temperature, args.policy_seed)
    except (ValueError, ImportError) as exc:
        console.print(f"[red]eval-libero: {exc}[/red]")
        return 2
    resolve_env_settings(args, policy.requirements)
    cfg = EvalConfig(
        suite=args.suite,
        tasks=args.tasks,
        trials_per_task=args.trials_per_task,
        init_offset=args.init_offset,
        protocol=args.protocol,
        workers=args.workers,
        overlap=args.overlap,
        backend=args.backend,
        image_size=args.image_size,
        cameras=args.cameras,
        render=args.render,
        max_episode_steps=args.max_steps,
        video=args.video,
        video_camera=args.video_camera,
        step_timeout=args.step_timeout,
        reset_timeout=args.reset_timeout,
        out_dir=out,
    )
    try:
        cfg.validate()
        check_requirements(policy, cfg.image_size, cfg.cameras)
    except ValueError as exc:
        console.print(f"[red]eval-libero: {exc}[/red]")
        return 2
    with episode_progress(console, f"eval {args.suite}", enabled=not args.no_progress) as on_episode:
        summary = evaluate(policy, cfg, progress=on_episode)
    print(to_markdown(summary))
    console.print(f"results: {out / 'results.json'}  {out / 'results.md'}")
    return 0
