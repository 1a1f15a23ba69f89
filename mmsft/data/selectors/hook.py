"""How the SFT producer runs a configured selector (``data.selector``, ``data.selector_args``) and records it.

* offline selectors run once, at producer start, with the model about to be trained; their per-sample decisions are
  written to ``<run>/selection/decisions.jsonl`` and reused verbatim on resume (the resumed model has changed, the
  selection must not);
* online selectors score a candidate pool each step; each step's kept / dropped ids and reasons are appended to
  ``<run>/selection/steps.jsonl`` (rows past a resumed checkpoint are rewritten), and their state (e.g. the UDS
  memory) is part of the checkpoint.

Both update ``<run>/selection/report.json`` (the per-run selection report: selector, arguments, counts per reason,
kept / dropped totals) and add ``select/kept``, ``select/dropped`` and ``select/<reason>`` (cumulative) to
``metrics.jsonl``. With data parallelism every rank scores the whole pool (identical decisions) and trains its share;
a step that keeps fewer candidates than there are ranks is topped up from the pool in order (``kept_topup``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from mmsft.data.schema import DataError, Sample
from mmsft.data.selectors.base import SELECTORS, Decision, SelectionEnv
from mmsft.data.selectors.s3ft import with_user_text

SELECTION_DIR = "selection"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def apply_decisions(samples: Sequence[Sample], decisions: Sequence[Decision]) -> list[Sample]:
    """The training set after offline decisions (order kept; copies repeated with ids ``id@2``, ``id@3``, ...)."""
    if len(decisions) != len(samples) or [d.index for d in decisions] != list(range(len(samples))):
        raise ValueError("a selector must return exactly one decision per sample, in order")
    out: list[Sample] = []
    for s, d in zip(samples, decisions):
        if not d.keep:
            continue
        if d.target is not None:
            s = with_user_text(s, None, d.target)
        if d.weight is not None:
            s = dataclasses.replace(s, weight=d.weight * (s.weight if s.weight is not None else 1.0))
        out.append(s)
        out += [dataclasses.replace(s, id=f"{s.id}@{c}") for c in range(2, d.copies + 1)]
    if not out:
        raise DataError("the data selector dropped every training sample; see the selection report")
    return out


def count_reasons(decisions: Sequence[Decision]) -> dict[str, float]:
    counts: dict[str, float] = {"select/kept": 0.0, "select/dropped": 0.0}
    for d in decisions:
        counts["select/kept" if d.keep else "select/dropped"] += 1
        counts[f"select/{d.reason}"] = counts.get(f"select/{d.reason}", 0.0) + 1
    counts["select/trained_rows"] = float(sum(d.copies for d in decisions if d.keep))
    return counts


def _key(name: str, args: Any, samples: Sequence[Sample], train_path: str, context: dict[str, Any]) -> str:
    ids = hashlib.sha256("\n".join(s.id for s in samples).encode()).hexdigest()
    return json.dumps({"selector": name, "args": dataclasses.asdict(args), "train_path": train_path,
                       "samples": len(samples), "ids": ids, **context}, sort_keys=True, default=str)


def run_offline(name: str, args: Any, samples: Sequence[Sample], env: SelectionEnv, out_dir: Path, train_path: str,
                write: bool = True, context: dict[str, Any] | None = None) -> tuple[list[Sample], dict[str, float]]:
    """Run (or reuse from ``out_dir``) an offline selector; returns (training samples, counts). Saved decisions are
    reused when the selector, its arguments, the data (path and ids) and ``context`` (model, seed, max length) match."""
    entry = SELECTORS.get(name)
    key = _key(name, args, samples, train_path, context or {})
    report_path, rows_path = out_dir / "report.json", out_dir / "decisions.jsonl"
    decisions = None
    if report_path.is_file() and rows_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        if report.get("key") == key:
            decisions = [Decision(**{k: v for k, v in json.loads(line).items() if k != "id"})
                         for line in rows_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if decisions is None:
        decisions = list(entry.fn(samples, args, env))
        if write:
            _write_atomic(rows_path, "".join(json.dumps({"id": samples[d.index].id, **dataclasses.asdict(d)},
                                                        ensure_ascii=False) + "\n" for d in decisions))
    selected = apply_decisions(samples, decisions)
    counts = count_reasons(decisions)
    if write:
        _write_atomic(report_path, json.dumps({"selector": name, "kind": "offline", "args": dataclasses.asdict(args),
                                               "key": key, "samples": len(samples), "trained_rows": len(selected),
                                               "counts": counts}, indent=2, default=str))
    return selected, counts


class OnlineRunner:
    """Wraps an online selector for the producer: scores the drawn pool, keeps its choice, records it."""

    def __init__(self, name: str, args: Any, selector: Any, env: SelectionEnv, out_dir: Path, world_size: int,
                 write: bool) -> None:
        self.name, self.args, self.selector, self.env = name, args, selector, env
        self.out_dir, self.world_size, self.write = out_dir, world_size, write
        self.counts: dict[str, float] = {"select/kept": 0.0, "select/dropped": 0.0}
        self.last_scores: dict[str, float] = {}

    def pool_size(self, samples_per_step: int) -> int:
        return self.selector.pool_size(samples_per_step)

    def select(self, drawn: list[tuple[int, Any]], step: int, ids: Sequence[str]) -> list[tuple[int, Any]]:
        from mmsft.data.selectors.scoring import token_stats

        stats = token_stats(self.env.model, self.env.adapter, [e for _, e in drawn], self.env.device,
                            self.env.batch_size, with_logits=self.selector.needs_logits,
                            vocab_subset=self.env.vocab_subset)
        decision = self.selector.select(stats, step)
        keep = list(decision.keep)
        reasons = dict(decision.reasons)
        if len(keep) < self.world_size:
            extra = [i for i in range(len(drawn)) if i not in keep][: self.world_size - len(keep)]
            keep += extra
            reasons["kept_topup"] = len(extra)
        out = []
        for i in keep:
            index, encoded = drawn[i]
            mask = decision.token_keep.get(i)
            if mask is not None:
                encoded = prune_encoded(encoded, mask)
            out.append((index, encoded))
        self.counts["select/kept"] += len(keep)
        self.counts["select/dropped"] += len(drawn) - len(keep)
        for reason, n in reasons.items():
            self.counts[f"select/{reason}"] = self.counts.get(f"select/{reason}", 0.0) + n
        self.last_scores = {f"select/{k}": float(v) for k, v in decision.scores.items()}
        if self.write:
            row = {"step": step, "kept": [ids[i] for i in keep],
                   "dropped": [ids[i] for i in range(len(drawn)) if i not in keep], "reasons": reasons,
                   "scores": decision.scores,
                   "tokens_pruned": {ids[i]: int((~m).sum()) for i, m in decision.token_keep.items()}}
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with (self.out_dir / "steps.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._report(step + 1)
        return out

    def _report(self, steps: int) -> None:
        _write_atomic(self.out_dir / "report.json",
                      json.dumps({"selector": self.name, "kind": "online", "args": dataclasses.asdict(self.args),
                                  "steps": steps, "counts": self.counts, "last_scores": self.last_scores},
                                 indent=2, default=str))

    def metrics(self) -> dict[str, float]:
        return {**self.counts, **self.last_scores}

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "selector": self.selector.state_dict()}

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        self.counts = {k: float(v) for k, v in state.get("counts", {}).items()}
        self.selector.load_state_dict(state.get("selector", {}))
        path = self.out_dir / "steps.jsonl"
        if self.write and path.is_file():  # forget the steps the resumed run will redo
            rows = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line)["step"] < step]
            _write_atomic(path, "".join(r + "\n" for r in rows))


def prune_encoded(encoded: Any, keep: Any) -> Any:
    """A copy of an ``Encoded`` whose loss mask keeps only the supervised tokens where ``keep`` is True (the input
    is unchanged: pruned tokens stay in the context)."""
    mask = encoded.loss_mask.clone()
    cols = mask.nonzero(as_tuple=True)[0]
    if len(cols) != len(keep):
        raise ValueError(f"token mask has {len(keep)} entries for {len(cols)} supervised tokens")
    mask[cols[~keep.to(mask.device)]] = False
    weights = encoded.token_weights[keep] if encoded.token_weights is not None else None
    return dataclasses.replace(encoded, loss_mask=mask, token_weights=weights)


def build_selection(ctx: Any) -> tuple[list[Sample], OnlineRunner | None, dict[str, float]]:
    """(training samples, online runner or None, offline counts) for a producer context (``ctx.cfg.data.selector``)."""
    from mmsft.config import build_args

    cfg = ctx.cfg
    name = getattr(cfg.data, "selector", "")
    if not name:
        return list(ctx.samples), None, {}
    entry = SELECTORS.get(name)
    args = build_args(entry, cfg.data.selector_args, "data.selector_args")
    env = SelectionEnv(model=ctx.policy.model, adapter=ctx.adapter, device=ctx.device, seed=cfg.train.seed,
                       vocab_subset=ctx.vocab_subset, batch_size=cfg.train.micro_batch_size)
    out_dir = Path(ctx.run_dir) / SELECTION_DIR
    if entry.meta["kind"] == "offline":
        context = {"model": cfg.model.name_or_path, "seed": cfg.train.seed, "max_length": cfg.data.max_length,
                   "lora": [cfg.lora.enabled, cfg.lora.method]}
        samples, counts = run_offline(name, args, ctx.samples, env, out_dir, cfg.data.train_path, write=ctx.rank == 0,
                                      context=context)
        return samples, None, counts
    return list(ctx.samples), OnlineRunner(name, args, entry.fn(args, env), env, out_dir, ctx.world_size,
                                           write=ctx.rank == 0), {}
