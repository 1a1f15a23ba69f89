"""``mmsft study continual``: sequential SFT vs RFT vs RIF-RFT vs multi-task training on five tasks from mmsft's
worlds (Lai et al., arXiv 2507.05386), two seeds; matrices, BWT, and computed statements on forgetting and on what
RIF-RFT saves. See :mod:`tasks.continual.study` and docs/continual.md."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/continual-study", help="work folder (data, runs, results, study.md)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller data and step budgets (docs/continual.md gives the measured CPU time)")
    parser.add_argument("--seeds", default="",
                        help="comma-separated training seeds (default: 0,1; with --quick: 0, to stay under 10 minutes)")
    parser.add_argument("--methods", default="sft,rft,rif_rft,multitask",
                        help="comma-separated methods among sft, rft, rif_rft, multitask, sft_lora, past")
    parser.add_argument("--base-model", default="", help="base VLM folder (default: the shipped thinking-capable base, assets/thinking_base)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--jobs", type=int, default=2,
                        help="worker processes that train the (method, seed) runs side by side (default 2: one per "
                             "core of the 2-core reference machine; results do not depend on it)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the task data (the same for every run)")


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    import yaml

    from mmsft.config import ConfigError
    from mmsft.continual import run_experiment
    from tasks.continual.study import DEFAULT, QUICK, build_data, check_base_disjoint, experiment
    from tasks.continual.verdict import forgetting_statement, rif_statement, rl_reward_table
    from tasks.image_classification.base_model import ensure_thinking_base

    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1")).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r}: expected comma-separated integers") from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = ("sft", "rft", "rif_rft", "multitask", "sft_lora", "past")
    unknown = [m for m in methods if m not in known]
    if unknown or not methods or not seeds:
        raise ConfigError(f"--methods {args.methods!r} / --seeds {args.seeds!r}: methods must be among {known}, "
                          "with at least one seed")
    scale = QUICK if args.quick else DEFAULT
    out = Path(args.out)
    base = Path(args.base_model) if args.base_model else ensure_thinking_base()
    disjoint = check_base_disjoint(base, scale, args.data_seed)
    data = build_data(out / "data", scale, args.data_seed)
    doc = experiment(out, data, scale, seeds, str(base), methods, args.threads)
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_experiment(doc, jobs=args.jobs)
    summary = result.results["summary"]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    text = "\n\n".join([
        f"# Continual post-training study ({'quick' if args.quick else 'default'} scale)",
        f"Seeds {seeds}; methods {methods}; this call: {cpu:.0f} s CPU time of this process, {wall:.0f} s wall "
        "(a resumed call counts only its own work; per-stage CPU times are in results.json).",
        forgetting_statement(summary), rif_statement(summary),
        rl_reward_table(result.output_dir, [m for m in methods if m in ("rft", "rif_rft")],
                        list(data["tasks"])),
        f"Tables and plots: {result.output_dir / 'results.md'}, heatmaps.png, curves.png.",
    ])
    (out / "study.md").write_text(text + "\n")
    (out / "study.json").write_text(json.dumps({"cpu_s": cpu, "wall_s": wall, "quick": args.quick, "seeds": seeds,
                                                "methods": methods, "scale": scale.__dict__,
                                                "jobs": args.jobs, "base_model": str(base),
                                                "base_disjointness": disjoint}, indent=2) + "\n")
    print(text)
    return 0
