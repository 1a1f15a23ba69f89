"""The ``libero_success`` evaluator: the standard LIBERO success-rate protocol (:func:`tasks.libero.evaluate.evaluate`)
run after a pipeline stage.

Importing this module registers the evaluator in :data:`mmsft.eval.evaluators.EVALUATORS` (the ``mmsft.plugins``
entry point of the LIBERO tasks imports it; a pipeline can also list it under ``plugins:``). Pipeline entry::

    - {name: spatial, evaluator: libero_success, policy: my_pkg.vla:Policy, suite: libero_spatial,
       tasks: "0-3", trials_per_task: 10, workers: 4}

``policy`` takes the forms of ``mmsft eval-libero --policy`` (``oracle``, ``mmsft:MODEL_DIR`` or
``package.module:callable``) plus ``mmsft``: the stage's own model folder as a trained VLA
(:class:`tasks.libero.vla_policy.VLAPolicy`, batched over the workers; image size, cameras and render default to
what the model was trained with). A ``package.module:callable`` factory that accepts a ``model_dir`` keyword is
called with the stage's model folder too. Otherwise the policy ignores the stage (e.g. ``oracle``, a reference row)
and the result says so with ``policy_uses_model = 0``. ``init_offset`` evaluates held-out init states.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsft.eval.evaluators import EVALUATORS, EvalContext, EvaluatorError, arg_field, parse_args


@dataclass
class LiberoArgs:
    policy: str = arg_field("", "mmsft (the stage's model folder as a VLA), mmsft:MODEL_DIR, oracle, or "
                                "package.module:callable (a factory; gets model_dir= when it accepts it).")
    suite: str = arg_field("libero_spatial", "LIBERO suite.",
                           ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90"))
    tasks: str = arg_field("all", "Task ids: all, or a list like 0,3,5-7.")
    trials_per_task: int = arg_field(50, "Episodes per task; episode k starts from init state init_offset + k.")
    init_offset: int = arg_field(0, "First init state (held-out init states: e.g. 40).")
    workers: int = arg_field(1, "Simulator worker processes.")
    image_size: int = arg_field(0, "Side of the observed images (0: the policy's, else 224).")
    cameras: str = arg_field("", "Comma list from agentview,wrist; none for physics only (empty: the policy's, "
                                 "else agentview,wrist).")
    render: str = arg_field("", "paper (published protocol) or fast (empty: the policy's, else paper).",
                            ("", "paper", "fast"))
    temperature: float = arg_field(0.0, "Sampling temperature of a VLA policy (0: greedy).")
    max_episode_steps: int = arg_field(0, "Step limit (0: the suite's paper limit).")
    video: str = arg_field("none", "Write one video per episode.", ("none", "mp4", "gif"))


def _accepts_model_dir(factory: Any) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "model_dir" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


@EVALUATORS.register("libero_success", metric="success_rate", args=LiberoArgs)
def libero_success(model_dir: Path, spec: dict[str, Any], ctx: EvalContext) -> dict[str, float]:
    """Suite success rate (and per task) of the policy on ``trials_per_task`` episodes per task."""
    import argparse

    from tasks.libero.cli_eval import parse_cameras, parse_task_list
    from tasks.libero.evaluate import EvalConfig, check_requirements, evaluate
    from tasks.libero.policies import LoadedPolicy, load_policy

    args = parse_args(LiberoArgs, spec, ctx.where)
    if not args.policy:
        raise EvaluatorError(f"{ctx.where}: key 'policy' is required ('mmsft', 'mmsft:MODEL_DIR', 'oracle' or "
                             "'package.module:callable')")
    name = f"mmsft:{model_dir}" if args.policy == "mmsft" else args.policy
    try:
        policy = load_policy(name, temperature=args.temperature)
        req = policy.requirements or {}
        tasks = parse_task_list(args.tasks)
        cameras = parse_cameras(args.cameras) if args.cameras else tuple(req.get("cameras", ("agentview", "wrist")))
    except (argparse.ArgumentTypeError, ValueError, ImportError) as exc:
        raise EvaluatorError(f"{ctx.where}: {exc}") from None
    uses_model = args.policy == "mmsft"
    if not policy.batched and args.policy != "oracle" and _accepts_model_dir(policy.factory):
        uses_model = True
        policy = LoadedPolicy(policy.name, functools.partial(policy.factory, model_dir=str(model_dir)),
                              policy.privileged)
    cfg = EvalConfig(suite=args.suite, tasks=tasks, trials_per_task=args.trials_per_task, workers=args.workers,
                     init_offset=args.init_offset, image_size=args.image_size or int(req.get("image_size", 224)),
                     cameras=cameras, render=args.render or str(req.get("render", "paper")),
                     max_episode_steps=args.max_episode_steps or None, video=args.video,
                     video_camera=cameras[0] if cameras else "agentview", out_dir=ctx.out_dir)
    try:
        cfg.validate()
        check_requirements(policy, cfg.image_size, cfg.cameras)
    except ValueError as exc:
        raise EvaluatorError(f"{ctx.where}: {exc}") from None
    summary = evaluate(policy, cfg)
    metrics = {"success_rate": summary["success_rate"], "episodes": float(summary["episodes"]),
               "successes": float(summary["successes"]), "faults": float(summary["faults"]),
               "policy_uses_model": float(uses_model)}
    metrics.update({f"success_rate/task{row['task_id']}": row["success_rate"] for row in summary["tasks"]})
    return metrics
