"""``mmsft continual EXPERIMENT.yaml [key=value ...]`` and ``mmsft continual report RUN_DIR``: continual
post-training experiments (task sequences × methods × seeds, forgetting matrices; docs/continual.md)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="EXPERIMENT.yaml | report",
                        help="the experiment file to run (or resume), or 'report' to re-render a run folder")
    parser.add_argument("rest", nargs="*", metavar="KEY=VALUE | RUN_DIR",
                        help="experiment overrides (output_dir=runs/x seeds=[0] defaults.optim.lr=1e-4), or after "
                             "'report' the run folder")
    parser.add_argument("--print-plan", action="store_true",
                        help="validate the experiment, print every (method, seed) pipeline's stages and exit")
    parser.add_argument("--jobs", type=int, default=1,
                        help="train the (method, seed) runs in this many worker processes after the warm-up (results "
                             "do not depend on it; each worker's output goes to its run folder's worker.log)")
    parser.epilog = ("Writes <output_dir>/runs/<method>/seed<s>/ (one pipeline run each), start/, results.json, "
                     "results.md, heatmaps.png, curves.png. Rerunning the same command resumes: finished stages and "
                     "evaluations are skipped, an interrupted stage continues from its checkpoint.")


def run(args: argparse.Namespace) -> int:
    """Bad input (experiment file, methods, tasks, recipes, evaluators) is reported by the CLI as one line."""
    from mmsft.config import ConfigError

    if args.target == "report":
        if len(args.rest) != 1:
            raise ConfigError("usage: mmsft continual report RUN_DIR (the experiment's output_dir)")
        from mmsft.continual.report import render

        render(args.rest[0])
        print(f"{args.rest[0]}: results.md, heatmaps.png, curves.png re-rendered from results.json")
        return 0
    from mmsft.continual import plan_runs, run_experiment
    from mmsft.continual.spec import load_experiment

    if args.print_plan:
        for planned in plan_runs(load_experiment(args.target, args.rest)):
            stages = ", ".join(s["name"] for s in planned.plan.stages)
            hooks = ", ".join(type(h).__name__ for h in planned.plan.hooks) or "none"
            print(f"{planned.method.name} (method {planned.method.method}) seed {planned.seed}: stages [{stages}]; "
                  f"hooks: {hooks}; run folder {planned.pipeline.output_dir}")
        return 0
    result = run_experiment(args.target, args.rest, jobs=args.jobs)
    print(f"results: {result.output_dir / 'results.md'}")
    return 0
