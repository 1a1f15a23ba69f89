"""``mmsft study sft-objectives``: the same toy task, the same base model and the same step budget for SFT, DFT,
ASFT, OTR, CurioSFT, IFT, masked FT, CHORD, Prefix-RFT, LfU and GRPO; reports ID
accuracy, OOD accuracy, forgetting on a probe task, calibration (ECE), output diversity (distinct-n, EAD) and wall
time per step, and says per method whether its paper's claimed direction over SFT holds here.

Protocol (:mod:`tasks.objective_study.world` for the task): a tiny text model (fixed seed) is first trained on the
probe task and a third of the target rows for ``base_steps`` (a warm start, so on-policy methods see non-zero rewards); every
method then starts from that base and trains ``steps`` optimizer steps of 8 sequences (SFT family: 8 dataset rows;
on-policy: 2 prompts × 4 samples; CHORD adds 4 expert rows; Prefix-RFT prefixes one member per group) with AdamW at a
constant learning rate; everything is repeated for each seed (world split, initialisation, data order; default 5 seeds)
and averaged. Rewards: exact match of the first word (``study_exact``). Accuracy and confidence are the greedy first
answer token (every answer is one token); diversity samples 4 completions per OOD prompt at temperature 1. Claim
checks compare the seed-mean with SFT's at one standard error of the difference of two proportions over the
independent clusters of all seeds (accuracy, forgetting), or a 5 % relative margin (diversity): ``holds`` /
``contradicted`` / ``within noise`` — evidence on this toy task, not a replication.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS: dict[str, list[str] | None] = {
    "sft": ["objective.name=sft"],
    "dft": ["objective.name=dft"],
    "asft": ["algorithm=asft", "objective.args.topk=0"],
    "otr": ["algorithm=otr"],
    "curio_sft": ["algorithm=curio_sft"],
    "masked_ft": ["algorithm=masked_ft"],
    "chord": ["algorithm=chord", "mix.expert_path={train}", "mix.expert_per_step=4", "rl.rewards=study_exact",
              "rl.prompts_per_step=2", "rl.group_size=4", "rl.max_new_tokens=4"],
    "prefix_rft": ["algorithm=prefix_rft", "rl.rewards=study_exact", "rl.prompts_per_step=2", "rl.group_size=4",
                   "rl.max_new_tokens=4", "train.micro_batch_size=8"],
    "grpo": ["algorithm=grpo", "objective.kl.coef=0", "rl.rewards=study_exact", "rl.prompts_per_step=2",
             "rl.group_size=4", "rl.max_new_tokens=4"],
    "ift": ["algorithm=ift"],
    "lfu": ["algorithm=lfu"],
}

# (metric, direction, source) — the direction each paper claims over SFT
CLAIMS: dict[str, list[tuple[str, int, str]]] = {
    "dft": [("ood", +1, "better generalisation (arXiv 2508.05629)")],
    "asft": [("id", +1, "beats SFT (arXiv 2509.23753)"), ("forgetting", -1, "anchored to the base")],
    "otr": [("ood", +1, "better generalisation (arXiv 2509.26313)"), ("forgetting", -1, "less forgetting")],
    "curio_sft": [("ead", +1, "preserves entropy/diversity (arXiv 2602.02244)"), ("ood", +1, "OOD gains")],
    "masked_ft": [("id", +1, "better knowledge injection (arXiv 2510.09885)")],
    "ift": [("id", +1, "beats SFT with SFT data only (arXiv 2405.11870)")],
    "chord": [("id", +1, "beats SFT (arXiv 2508.11408)"), ("ood", +1, "and OOD")],
    "prefix_rft": [("id", +1, "beats SFT (arXiv 2507.01679)")],
    "lfu": [("forgetting", -1, "less forgetting (arXiv 2511.13052)"),
            ("ood", +1, "robust to paraphrased prompts (arXiv 2511.13052)")],
    "grpo": [("forgetting", -1, "RL forgets less (arXiv 2507.05386)"), ("ood", +1, "RL generalises better "
                                                                                 "(arXiv 2310.06452)"),
             ("ead", -1, "but is less diverse (arXiv 2310.06452)")],
}


@dataclass
class StudyConfig:
    out: Path
    steps: int = 300
    base_steps: int = 800
    base_lr: float = 3e-3
    lr: float = 1e-3
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    diversity_prompts: int = 32


def _train(model: str, data: Path, out: Path, steps: int, lr: float, seed: int, extra: list[str]) -> float:
    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    cfg = load_config(None, [f"model.name_or_path={model}", f"data.train_path={data}", f"train.output_dir={out}",
                             f"train.max_steps={steps}", "train.micro_batch_size=8", f"optim.lr={lr}",
                             "optim.scheduler=constant", "optim.max_grad_norm=1.0", f"train.seed={seed}",
                             "train.progress=false", "train.tensorboard=false", "train.resume=never",
                             "train.torch_threads=1", "train.save_total_limit=1", *extra])
    Trainer(cfg).train()
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    times = [r["train/step_time_s"] for r in records if "train/step_time_s" in r]
    return statistics.median(times[1:] or times)


def _evaluate(model_dir: Path, paths: dict[str, Path], diversity_prompts: int, seed: int) -> dict[str, float]:
    from mmsft.data.loaders import load_dataset
    from mmsft.models.loading import build_adapter, load_model
    from tasks.objective_study.metrics import ece, first_token, sampled_diversity

    loaded = load_model(str(model_dir))
    adapter = build_adapter(loaded)
    model = loaded.model.eval()
    out: dict[str, float] = {}
    for split in ("id", "ood", "probe"):
        samples = load_dataset(str(paths[split]))
        result = first_token(model, adapter, samples)
        out[split] = result.accuracy
        out[f"{split}_n"] = len({s.meta.get("cluster", s.id) for s in samples})  # independent clusters
        if split == "ood":
            out["ece"] = ece(result.correct, result.confidence)
    ood = load_dataset(str(paths["ood"]))[:diversity_prompts]
    out.update(sampled_diversity(model, adapter, ood, seed=seed))
    return out


def _verdict(method: str, row: dict[str, float], sft: dict[str, float]) -> tuple[str, list[str]]:
    notes, states = [], []
    for metric, direction, source in CLAIMS.get(method, []):
        if metric in ("id", "ood", "forgetting"):
            key = "probe" if metric == "forgetting" else metric
            a, b, n = row[key], sft[key], row[f"{key}_n"]
            diff = (a - b) * (-1 if metric == "forgetting" else 1)  # forgetting = base − probe accuracy
            se = math.sqrt(max(a * (1 - a) / n + b * (1 - b) / n, 1e-12))
        else:
            diff, se = row[metric] - sft[metric], 0.05 * max(abs(sft[metric]), 1e-9)
        signed = diff * direction
        state = "holds" if signed > se else ("contradicted" if signed < -se else "within noise")
        states.append(state)
        notes.append(f"{metric} {'↑' if direction > 0 else '↓'}: {state} ({source})")
    if not states:
        return "—", notes
    if all(s == "holds" for s in states):
        return "holds", notes
    return ("does not hold" if "contradicted" in states else "inconclusive"), notes


def _one_seed(cfg: StudyConfig, seed: int) -> dict[str, Any]:
    from mmsft.models.tiny import build_tiny
    from tasks.objective_study.world import build

    out = Path(cfg.out) / f"seed-{seed}"
    paths = build(out / "data", seed)
    base_model = build_tiny("text", out / "init", seed=seed)
    _train(str(base_model), paths["base"], out / "base", cfg.base_steps, cfg.base_lr, seed, [])
    base = out / "base" / "final"
    result: dict[str, Any] = {"base": _evaluate(base, paths, cfg.diversity_prompts, seed), "methods": {}}
    for method in cfg.methods:
        extra = METHODS[method]
        if extra is None:
            continue
        run = out / "runs" / method
        t0 = time.perf_counter()
        step_s = _train(str(base), paths["train"], run, cfg.steps, cfg.lr, seed,
                        [e.format(train=paths["train"]) for e in extra])
        row = _evaluate(run / "final", paths, cfg.diversity_prompts, seed)
        row.update({"step_s": step_s, "wall_s": time.perf_counter() - t0,
                    "forgetting": result["base"]["probe"] - row["probe"]})
        result["methods"][method] = row
        print(json.dumps({"seed": seed, method: {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}}),
              flush=True)
    return result


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean over seeds of every metric; cluster counts add up (``*_n``); spreads as ``*_sd``."""
    out: dict[str, float] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        out[key] = float(sum(values)) if key.endswith("_n") else statistics.fmean(values)
        if not key.endswith("_n") and len(values) > 1:
            out[f"{key}_sd"] = statistics.stdev(values)
    return out


def run_study(cfg: StudyConfig) -> dict[str, Any]:
    import torch

    import tasks.objective_study.rewards  # noqa: F401  (registers study_exact)

    torch.set_num_threads(1)
    started = time.perf_counter()
    per_seed = [_one_seed(cfg, seed) for seed in cfg.seeds]
    results: dict[str, Any] = {"config": {k: str(v) for k, v in cfg.__dict__.items()},
                               "base": _mean([r["base"] for r in per_seed]), "methods": {}, "per_seed": per_seed}
    for method in cfg.methods:
        if METHODS[method] is None:
            results["methods"][method] = {"status": "not implemented"}
        else:
            results["methods"][method] = _mean([r["methods"][method] for r in per_seed])
    sft = results["methods"].get("sft")
    for method, row in results["methods"].items():
        if sft and "id" in row and method != "sft":
            row["verdict"], row["claims"] = _verdict(method, row, sft)
    results["wall_s"] = time.perf_counter() - started
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    base = results["base"]
    seeds = len(results["per_seed"])
    lines = [f"Mean over {seeds} seed(s) (± sd across seeds). Base model: ID {base['id']:.3f}, OOD {base['ood']:.3f}, "
             f"probe {base['probe']:.3f}, ECE {base['ece']:.3f}, EAD {base['ead']:.3f}.", "",
             "| method | ID acc | OOD acc | forgetting (probe drop) | ECE (OOD) | distinct-1 | distinct-2 | EAD | s/step "
             "| paper's direction over SFT |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for method, row in results["methods"].items():
        if "id" not in row:
            lines.append(f"| {method} | — | — | — | — | — | — | — | — | {row.get('status', '')} |")
            continue
        claims = "; ".join(row.get("claims", [])) or "(reference)"
        sd = lambda key: f" ± {row[key + '_sd']:.3f}" if key + "_sd" in row else ""  # noqa: E731
        lines.append(f"| {method} | {row['id']:.3f}{sd('id')} | {row['ood']:.3f}{sd('ood')} | "
                     f"{row['forgetting']:+.3f}{sd('forgetting')} | {row['ece']:.3f} | "
                     f"{row['distinct_1']:.3f} | {row['distinct_2']:.3f} | {row['ead']:.3f} | {row['step_s']:.3f} | "
                     f"**{row.get('verdict', '—')}** {claims} |")
    lines.append("")
    lines.append(f"Total wall time: {results['wall_s'] / 60:.1f} min.")
    return "\n".join(lines) + "\n"
