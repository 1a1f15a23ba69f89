"""The ``libero_success`` evaluator: the standard LIBERO success-rate protocol (:func:`tasks.libero.evaluate.evaluate`)
run after a pipeline stage.

Importing this module registers the evaluator in :data:`mmsft.eval.evaluators.EVALUATORS` (the ``mmsft.plugins``
entry point of the LIBERO tasks imports it; a pipeline can also list it under ``plugins:``). Pipeline entry::

    - {name: spatial, evaluator: libero_success, policy: my_pkg.vla:Policy, suite: libero_spatial,
       tasks: "0-3", trials_per_task: 10, workers: 4}

``policy`` takes the forms of ``mmsft eval-libero --policy``: ``oracle`` or ``package.module:callable``. There is no
built-in loader that turns a trained VLA folder into a LIBERO policy yet, so the stage's model reaches the policy
only through the factory: when the factory (a class, or a function whose arguments all have defaults) accepts a
``model_dir`` keyword, it is called with the stage's model folder. Otherwise the policy ignores the stage (e.g. ``oracle``, a reference
row) and the result says so with ``policy_uses_model = 0``.
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
    policy: str = arg_field("", "oracle or package.module:callable (a factory; gets model_dir= when it accepts it).")
    suite: str = arg_field("libero_spatial", "LIBERO suite.",
                           ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90"))
    tasks: str = arg_field("all", "Task ids: all, or a list like 0,3,5-7.")
    trials_per_task: int = arg_field(50, "Episodes per task; episode k starts from init state k.")
    workers: int = arg_field(1, "Simulator worker processes.")
    image_size: int = arg_field(224, "Side of the observed images.")
    cameras: str = arg_field("agentview,wrist", "Comma list from agentview,wrist; none for physics only.")
    render: str = arg_field("paper", "paper (published protocol) or fast.", ("paper", "fast"))
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
    from tasks.libero.evaluate import EvalConfig, evaluate
    from tasks.libero.policies import LoadedPolicy, load_policy

    args = parse_args(LiberoArgs, spec, ctx.where)
    if not args.policy:
        raise EvaluatorError(f"{ctx.where}: key 'policy' is required ('oracle' or 'package.module:callable')")
    try:
        tasks, cameras = parse_task_list(args.tasks), parse_cameras(args.cameras)
        policy = load_policy(args.policy)
    except (argparse.ArgumentTypeError, ValueError, ImportError) as exc:
        raise EvaluatorError(f"{ctx.where}: {exc}") from None
    uses_model = args.policy != "oracle" and _accepts_model_dir(policy.factory)
    if uses_model:
        policy = LoadedPolicy(policy.name, functools.partial(policy.factory, model_dir=str(model_dir)),
                              policy.privileged)
    cfg = EvalConfig(suite=args.suite, tasks=tasks, trials_per_task=args.trials_per_task, workers=args.workers,
                     image_size=args.image_size, cameras=cameras, render=args.render,
                     max_episode_steps=args.max_episode_steps or None, video=args.video,
                     video_camera=cameras[0] if cameras else "agentview", out_dir=ctx.out_dir)
    try:
        cfg.validate()
    except ValueError as exc:
        raise EvaluatorError(f"{ctx.where}: {exc}") from None
    summary = evaluate(policy, cfg)
    metrics = {"success_rate": summary["success_rate"], "episodes": float(summary["episodes"]),
               "successes": float(summary["successes"]), "faults": float(summary["faults"]),
               "policy_uses_model": float(uses_model)}
    metrics.update({f"success_rate/task{row['task_id']}": row["success_rate"] for row in summary["tasks"]})
    return metrics
