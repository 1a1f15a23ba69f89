"""``mmsft study data-selection``: the same SFT budget (steps × 8 trained rows, same base, same lr) with random
(plain SFT over the noisy pool in a seeded random order) vs S3FT, GRAPE, UDS, Q-Tuning and STAT selection on the toy
task of :mod:`tasks.data_selection.world`; reports held-out accuracy, forgetting on a probe task, supervised tokens
trained and the selection counts, and says per method whether its paper's direction over random holds here.

* s3ft / grape / stat run offline once on the pool (``data.selector``); stat's profile = the skills of the base
  model's failures on the validation split (no teacher model: each failed question's own skill is the "missing
  skill" — a simplification of the paper's teacher diagnosis).
* uds / q_tuning score a pool of 4 × 8 candidates per step and train on their choice (UDS keeps 8; Q-Tuning keeps what
  its quadrant rule keeps, ≈ 25 %, topped up to the rank count — so its token count is reported, not assumed).
* Verdicts compare the seed-mean with random's at one standard error of the difference of two proportions over the
  independent clusters of all seeds (held-out: the 24 facts — each is asked with two fillers; probe: 17 words):
  ``holds`` / ``contradicted`` / ``within noise`` — evidence on a toy task, not a replication.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS: dict[str, list[str]] = {
    "random": [],
    "s3ft": ["data.selector=s3ft", "data.selector_args={judge: 'tasks.data_selection.world:s3ft_judge', "
             "max_new_tokens: 8}"],
    "grape": ["data.selector=grape"],
    "uds": ["data.selector=uds", "data.selector_args={pool: 4, r1: 16, r2: 8, t_max: 32, alpha: 0.0025}"],
    "q_tuning": ["data.selector=q_tuning", "data.selector_args={pool: 4, sample_ratio: 0.25, token_ratio: 0.5}"],
    "stat": ["data.selector=stat", "data.selector_args={profile_path: '{profile}'}"],
}
CLAIMS: dict[str, list[tuple[str, int, str]]] = {
    "s3ft": [("forgetting", -1, "halves the general-ability drop (arXiv 2502.08130)"), ("id", +1, "in-domain gains")],
    "grape": [("id", +1, "responses that fit the model train better (arXiv 2502.04194)")],
    "uds": [("id", +1, "beats random at the same budget (arXiv 2510.16882)")],
    "q_tuning": [("id", +1, "pruned data beats full data (arXiv 2509.23873)")],
    "stat": [("id", +1, "skill-targeted data helps saturated models (arXiv 2510.10023)")],
}


@dataclass
class StudyConfig:
    out: Path
    steps: int = 150
    base_steps: int = 800
    lr: float = 1e-3
    base_lr: float = 3e-3
    noise: float = 0.3
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    methods: list[str] = field(default_factory=lambda: list(METHODS))


def _train(model: str, data: Path, out: Path, steps: int, lr: float, seed: int, extra: list[str]) -> None:
    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    cfg = load_config(None, [f"model.name_or_path={model}", f"data.train_path={data}", f"train.output_dir={out}",
                             f"train.max_steps={steps}", "train.micro_batch_size=8", f"optim.lr={lr}",
                             "optim.scheduler=constant", "optim.max_grad_norm=1.0", f"train.seed={seed}",
                             "train.progress=false", "train.tensorboard=false", "train.resume=never",
                             "train.torch_threads=1", "train.save_total_limit=1", "train.report_to=none", *extra])
    Trainer(cfg).train()


def _accuracy(model_dir: Path, paths: dict[str, Path]) -> dict[str, Any]:
    """Greedy generations scored by the first known answer word they name (:func:`world.answer_word`); the probe
    by its normalised exact match."""
    from mmsft.data.loaders import load_dataset
    from mmsft.eval.generation import generate, is_correct
    from mmsft.models.loading import build_adapter, load_model
    from tasks.data_selection.world import answer_word

    loaded = load_model(str(model_dir))
    adapter = build_adapter(loaded)
    out: dict[str, Any] = {}
    for split in ("id", "probe", "val"):
        samples = load_dataset(str(paths[split]))
        texts = generate(loaded.model, adapter, samples, batch_size=32, max_new_tokens=8)
        if split == "probe":
            right = [is_correct(t, s.answer) for s, t in zip(samples, texts)]
        else:
            right = [answer_word(t) == s.answer for s, t in zip(samples, texts)]
        out[split] = sum(right) / len(right)
        # independent units for the standard errors: a fact asked with two fillers is one cluster
        out[f"{split}_n"] = len({s.id.rsplit("-", 1)[0] if split == "id" else s.id for s in samples})
        if split == "val":
            out["val_failed_skills"] = [s.meta["skills"] for s, ok in zip(samples, right) if not ok]
    return out


def _run_stats(run: Path) -> dict[str, float]:
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "train/supervised_tokens" in r]
    out = {"tokens": float(sum(r["train/supervised_tokens"] for r in steps)),
           "step_s": statistics.median([r["train/step_time_s"] for r in steps[1:]] or [0.0])}
    report = run / "selection" / "report.json"
    if report.is_file():
        counts = json.loads(report.read_text()).get("counts", {})
        out["kept"], out["dropped"] = counts.get("select/kept", 0.0), counts.get("select/dropped", 0.0)
    return out


def _one_seed(cfg: StudyConfig, seed: int) -> dict[str, Any]:
    from mmsft.data.selectors.stat import skill_profile
    from mmsft.models.tiny import build_tiny
    from tasks.data_selection.world import build

    out = Path(cfg.out) / f"seed-{seed}"
    paths = build(out / "data", seed, cfg.noise)
    init = build_tiny("text", out / "init", seed=seed)
    _train(str(init), paths["base"], out / "base", cfg.base_steps, cfg.base_lr, seed, [])
    base = out / "base" / "final"
    base_row = _accuracy(base, paths)
    profile = out / "profile.json"
    profile.write_text(json.dumps(skill_profile(base_row.pop("val_failed_skills")) or {"colour": 1.0}))
    result: dict[str, Any] = {"base": base_row, "profile": json.loads(profile.read_text()), "methods": {}}
    for method in cfg.methods:
        run = out / "runs" / method
        t0 = time.perf_counter()
        _train(str(base), paths["train"], run, cfg.steps, cfg.lr, seed,
               [e.replace("{profile}", str(profile)) for e in METHODS[method]])
        row = _accuracy(run / "final", paths)
        row.pop("val_failed_skills", None)
        row.update(_run_stats(run))
        row.update({"wall_s": time.perf_counter() - t0, "forgetting": base_row["probe"] - row["probe"]})
        result["methods"][method] = row
        print(json.dumps({"seed": seed, method: {k: round(v, 4) for k, v in row.items()
                                                 if isinstance(v, float)}}), flush=True)
    return result


def _mean(rows: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, first in rows[0].items():
        if not isinstance(first, (int, float)):
            continue
        values = [r[key] for r in rows]
        out[key] = float(sum(values)) if key.endswith("_n") else statistics.fmean(values)
        if not key.endswith("_n") and len(values) > 1:
            out[f"{key}_sd"] = statistics.stdev(values)
    return out


def verdict(method: str, row: dict[str, float], ref: dict[str, float]) -> tuple[str, list[str]]:
    """``holds`` when every claimed direction clears one standard error, ``does not hold`` when one is
    contradicted by more than that, else ``inconclusive``."""
    notes, states = [], []
    for metric, direction, source in CLAIMS.get(method, []):
        key = "probe" if metric == "forgetting" else metric
        a, b, n = row[key], ref[key], row[f"{key}_n"]
        diff = (a - b) * (-1 if metric == "forgetting" else 1)
        se = math.sqrt(max(a * (1 - a) / n + b * (1 - b) / n, 1e-12))
        signed = diff * direction
        state = "holds" if signed > se else ("contradicted" if signed < -se else "within noise")
        states.append(state)
        notes.append(f"{metric} {'↑' if direction > 0 else '↓'}: {state} ({source})")
    if not states:
        return "(reference)", notes
    if all(s == "holds" for s in states):
        return "holds", notes
    return ("does not hold" if "contradicted" in states else "inconclusive"), notes


def run_study(cfg: StudyConfig) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    per_seed = [_one_seed(cfg, seed) for seed in cfg.seeds]
    return summarize(cfg, per_seed, time.perf_counter() - started)


def summarize(cfg: StudyConfig, per_seed: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Seed means, verdicts against random, ``results.json`` and ``results.md`` from the per-seed rows."""
    results: dict[str, Any] = {"config": {k: str(v) for k, v in cfg.__dict__.items()},
                               "base": _mean([r["base"] for r in per_seed]), "methods": {}, "per_seed": per_seed}
    for method in cfg.methods:
        results["methods"][method] = _mean([r["methods"][method] for r in per_seed])
    ref = results["methods"].get("random")
    for method, row in results["methods"].items():
        if ref is not None and method != "random":
            row["verdict"], row["claims"] = verdict(method, row, ref)
    results["wall_s"] = wall_s
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    base = results["base"]
    seeds = len(results["per_seed"])
    lines = [f"Mean over {seeds} seed(s) (± sd across seeds). Base model: held-out {base['id']:.3f}, probe "
             f"{base['probe']:.3f}.", "",
             "| method | held-out acc | forgetting (probe drop) | supervised tokens | kept / dropped | s/step "
             "| paper's direction over random |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for method, row in results["methods"].items():
        sd = lambda key: f" ± {row[key + '_sd']:.3f}" if key + "_sd" in row else ""  # noqa: E731
        kept = f"{row['kept']:.0f} / {row['dropped']:.0f}" if "kept" in row else "—"
        claims = "; ".join(row.get("claims", [])) or "(reference)"
        lines.append(f"| {method} | {row['id']:.3f}{sd('id')} | {row['forgetting']:+.3f}{sd('forgetting')} | "
                     f"{row['tokens']:.0f} | {kept} | {row['step_s']:.3f} | **{row.get('verdict', '—')}** {claims} |")
    lines += ["", f"Total wall time: {results['wall_s'] / 60:.1f} min."]
    return "\n".join(lines) + "\n"
