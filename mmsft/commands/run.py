"""``mmsft run PIPELINE.yaml key=value ...``: a multi-stage pipeline with evaluations after every stage."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help="pipeline YAML file (stages, evaluators; see docs/pipeline.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="pipeline keys (output_dir=..., evaluate_base=false, defaults.train.seed=1) change the "
                             "pipeline; any other key (optim.lr=1e-4) is applied to every stage")
    parser.add_argument("--print-plan", action="store_true",
                        help="validate the pipeline, print each stage's resolved config and exit")
    parser.epilog = ("Writes <output_dir>/stages/<k>-<name>/ (one training run each), eval/<k>-<name>/<set>/, "
                     "matrix.json, matrix.md, matrix.png and pipeline_state.json. Rerunning the same command resumes: "
                     "finished stages and evaluations are skipped, an interrupted stage continues from its checkpoint.")


def run(args: argparse.Namespace) -> int:
    """Bad input (pipeline file, recipes, evaluator arguments, a changed finished stage) is reported by the CLI as
    one line (see :mod:`mmsft.errors`)."""
    from mmsft.pipeline import load_pipeline, run_pipeline

    if args.print_plan:
        _print_plan(load_pipeline(args.pipeline, args.overrides))
        return 0
    result = run_pipeline(args.pipeline, args.overrides)
    if result.is_main:
        print(f"run directory: {result.run_dir}  final model: {result.final_model_dir}")
    return 0


def _print_plan(spec) -> None:
    """Each stage's resolved config (stage k starts from stage k-1's final/) and the evaluation sets."""
    import yaml

    from mmsft.config import to_dict

    previous = None
    for stage in spec.stages:
        out = spec.output_dir / "stages" / stage.dirname
        cfg = stage.config(out, start_model=previous)
        previous = str(out / "final")
        print(f"# stage {stage.index}: {stage.name}\n" + yaml.safe_dump(to_dict(cfg), sort_keys=False))
    for eval_set in spec.evals:
        print(f"# evaluation set {eval_set.name}: {eval_set.evaluator} {eval_set.args}")
