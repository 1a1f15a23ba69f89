"""Evaluators for calibration and diversity (registered in :data:`mmsft.eval.evaluators.EVALUATORS`, usable from
``mmsft eval``, pipelines and continual runs).

``calibration`` — label probabilities from the model's log-likelihood of each candidate label as the answer
(softmax over the labels' summed target log-probs: the verbaliser restriction of arXiv 2312.13772 generalised to
multi-token labels), for each prompt template; ECE / NLL / accuracy per template and of the self-ensemble
(:func:`mmsft.eval.metrics.ensemble.combine`), plus a reliability diagram ``reliability.png``.

``diversity`` — ``n`` sampled completions per prompt; distinct-n and EAD per input (over the n completions of each
prompt, averaged) and across inputs (the first completion of every prompt), and, with an ``encoder`` folder, the
embedding-cosine diversity (arXiv 2310.06452).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmsft.data.schema import Message, Part, Sample
from mmsft.eval.evaluators import (EVALUATORS, EvalContext, EvaluatorError, arg_field, load_samples, parse_args,
                                   write_jsonl)
from mmsft.eval.metrics.calibration import ece, reliability_diagram
from mmsft.eval.metrics.diversity import distinct_n, ead_average, embed_texts, embedding_diversity
from mmsft.eval.metrics.ensemble import COMBINE_METHODS, combine


def with_prompt(sample: Sample, template: str, target: str | None) -> Sample:
    """A copy whose last user message's text becomes ``template`` with ``{prompt}`` replaced by that text (media
    parts kept in place) and whose assistant target is ``target`` (None: no target)."""
    messages = list(sample.prompt_messages)
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if template and users:
        last = messages[users[-1]]
        text = last.text
        parts = [p for p in last.parts if p.type != "text"] + [Part("text", text=template.replace("{prompt}", text))]
        messages[users[-1]] = Message(last.role, tuple(parts))
    if target is not None:
        messages.append(Message("assistant", (Part("text", text=target),)))
    return dataclasses.replace(sample, messages=messages, weight=None, token_weights=None)


@torch.no_grad()
def sequence_logps(model: Any, adapter: Any, samples: list[Sample], batch_size: int) -> list[float]:
    """Summed target log-prob of each sample (targets must be non-empty after encoding)."""
    from mmsft.models.policy import Policy

    policy = Policy(model)
    out: list[float] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        encoded = [adapter.encode(s, with_target=True) for s in chunk]
        batch = adapter.collate(encoded).to(next(model.parameters()).device)
        logp = policy(batch.inputs, batch.loss_mask).logp
        out += (logp * batch.loss_mask).sum(-1).tolist()
    return out


@dataclass
class CalibrationArgs:
    path: str = arg_field("", "JSONL / save_to_disk folder; each sample's 'answer' must be one of the labels.")
    labels: str = arg_field("", "Comma-separated candidate labels (empty: each sample's meta.choices list).")
    templates: list = dataclasses.field(default_factory=list, metadata={
        "help": "Prompt variants: strings containing {prompt} (empty: the prompt as is).", "choices": None})
    combine: str = arg_field("max", "Self-ensemble combination over templates.", COMBINE_METHODS)
    n_bins: int = arg_field(10, "Equal-width confidence bins of the ECE.")
    max_samples: int = arg_field(0, "Evaluate the first N samples (0: all).")
    batch_size: int = arg_field(16, "Sequences per forward pass.")


def _labels_of(sample: Sample, fixed: list[str], where: str) -> list[str]:
    labels = fixed or sample.meta.get("choices")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x for x in labels):
        raise EvaluatorError(f"{where}: sample {sample.where()} needs at least 2 non-empty string labels (key "
                             f"'labels' or meta.choices), got {labels!r}")
    if str(sample.answer) not in labels:
        raise EvaluatorError(f"{where}: sample {sample.where()} has answer {sample.answer!r}, not one of its labels "
                             f"{labels}")
    return labels


@EVALUATORS.register("calibration", metric="ece", args=CalibrationArgs)
def calibration(model_dir: Path, spec: dict[str, Any], ctx: EvalContext) -> dict[str, float]:
    """ECE (self-ensemble over templates) plus ``ece_single`` (mean over templates), accuracies and NLLs; writes
    ``calibration.jsonl`` (per sample) and ``reliability.png`` (ensemble)."""
    args = parse_args(CalibrationArgs, spec, ctx.where)
    if args.n_bins < 1 or args.batch_size < 1:
        raise EvaluatorError(f"{ctx.where}: n_bins and batch_size must be >= 1")
    templates = [str(t) for t in args.templates] or [""]
    for t in templates:
        if t and "{prompt}" not in t:
            raise EvaluatorError(f"{ctx.where}: template {t!r} has no {{prompt}} placeholder")
    fixed = [x.strip() for x in args.labels.split(",") if x.strip()]
    samples = load_samples(args.path, args.max_samples, ctx)
    if not samples:
        raise EvaluatorError(f"{ctx.where}: {args.path} holds no samples")
    labels = [_labels_of(s, fixed, ctx.where) for s in samples]
    loaded, adapter = ctx.model(model_dir)
    per_template: list[list[list[float]]] = []
    for template in templates:
        queries = [with_prompt(s, template, label) for s, ls in zip(samples, labels) for label in ls]
        scores = iter(sequence_logps(loaded.model, adapter, queries, args.batch_size))
        per_template.append([torch.softmax(torch.tensor([next(scores) for _ in ls], dtype=torch.float64), 0).tolist()
                             for ls in labels])
    width = max(len(ls) for ls in labels)  # ragged label sets: pad with probability 0
    padded = torch.zeros(len(templates), len(samples), width, dtype=torch.float64)
    for k, rows in enumerate(per_template):
        for i, row in enumerate(rows):
            padded[k, i, :len(row)] = torch.tensor(row, dtype=torch.float64)
    gold = torch.tensor([ls.index(str(s.answer)) for s, ls in zip(samples, labels)])

    def scores_of(p: torch.Tensor) -> tuple[float, float, float, list[float], list[bool]]:
        conf, pred = p.max(-1)
        right = (pred == gold).tolist()
        nll = float(-torch.log(p[torch.arange(len(gold)), gold].clamp_min(1e-12)).mean())
        return ece(conf.tolist(), right, args.n_bins), sum(right) / len(right), nll, conf.tolist(), right

    singles = [scores_of(padded[k]) for k in range(len(templates))]
    ensemble = combine(padded, args.combine)
    e_ece, e_acc, e_nll, conf, right = scores_of(ensemble)
    reliability_diagram(conf, right, ctx.out_dir / "reliability.png", args.n_bins,
                        title=f"{ctx.eval_set or 'calibration'}: ECE {e_ece:.4f} ({args.combine} of {len(templates)})")
    write_jsonl(ctx.out_dir / "calibration.jsonl",
                [{"id": s.id, "labels": ls, "answer": s.answer, "ensemble": ensemble[i, :len(ls)].tolist(),
                  "per_template": [padded[k, i, :len(ls)].tolist() for k in range(len(templates))]}
                 for i, (s, ls) in enumerate(zip(samples, labels))])
    k = len(templates)
    return {"ece": e_ece, "accuracy": e_acc, "nll": e_nll, "ece_single": sum(x[0] for x in singles) / k,
            "accuracy_single": sum(x[1] for x in singles) / k, "nll_single": sum(x[2] for x in singles) / k,
            "templates": float(k), "total": float(len(samples))}


@dataclass
class DiversityArgs:
    path: str = arg_field("", "JSONL / save_to_disk folder of prompts.")
    n: int = arg_field(4, "Sampled completions per prompt (per-input diversity needs >= 2).")
    temperature: float = arg_field(1.0, "Sampling temperature (> 0).")
    top_p: float = arg_field(1.0, "Nucleus threshold.")
    max_new_tokens: int = arg_field(32, "Generation cap.")
    max_samples: int = arg_field(0, "Use the first N prompts (0: all).")
    batch_size: int = arg_field(16, "Prompts per generation batch.")
    seed: int = arg_field(0, "torch seed of the sampling.")
    max_n: int = arg_field(5, "EAD averages n = 1..max_n; distinct-n is reported for n = 1..max_n.")
    vocab_size: int = arg_field(50257, "V of EAD (Kirk et al.'s default; units are whitespace words).")
    encoder: str = arg_field("", "Folder of a Hugging Face encoder for the embedding-cosine diversity (empty: skip).")


@EVALUATORS.register("diversity", metric="ead_per_input", args=DiversityArgs)
def diversity(model_dir: Path, spec: dict[str, Any], ctx: EvalContext) -> dict[str, float]:
    """Per-input and across-input distinct-n / EAD (and embedding diversity with ``encoder``); writes
    ``completions.jsonl``."""
    from mmsft.eval.generation import generate

    args = parse_args(DiversityArgs, spec, ctx.where)
    if args.n < 2 or args.temperature <= 0 or args.max_n < 1 or args.vocab_size < 2:
        raise EvaluatorError(f"{ctx.where}: diversity needs n >= 2, temperature > 0, max_n >= 1, vocab_size >= 2 "
                             f"(got n={args.n}, temperature={args.temperature}, max_n={args.max_n}, "
                             f"vocab_size={args.vocab_size})")
    prompts = load_samples(args.path, args.max_samples, ctx)
    if not prompts:
        raise EvaluatorError(f"{ctx.where}: {args.path} holds no prompts")
    loaded, adapter = ctx.model(model_dir)
    torch.manual_seed(args.seed)
    queries = [with_prompt(s, "", None) for s in prompts for _ in range(args.n)]
    texts = generate(loaded.model, adapter, queries, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                     do_sample=True, temperature=args.temperature, top_p=args.top_p)
    groups = [texts[i * args.n:(i + 1) * args.n] for i in range(len(prompts))]
    write_jsonl(ctx.out_dir / "completions.jsonl", [{"id": s.id, "completions": g} for s, g in zip(prompts, groups)])
    out: dict[str, float] = {
        "ead_per_input": sum(ead_average(g, args.max_n, args.vocab_size) for g in groups) / len(groups),
        "ead_across_input": ead_average([g[0] for g in groups], args.max_n, args.vocab_size)}
    for n in range(1, args.max_n + 1):
        out[f"distinct_{n}_per_input"] = sum(distinct_n(g, n) for g in groups) / len(groups)
        out[f"distinct_{n}_across_input"] = distinct_n([g[0] for g in groups], n)
    if args.encoder:
        if not Path(args.encoder).is_dir():
            raise EvaluatorError(f"{ctx.where}: encoder {args.encoder!r} is not a folder")
        emb = embed_texts(args.encoder, texts)
        per = [embedding_diversity(emb[i * args.n:(i + 1) * args.n]) for i in range(len(prompts))]
        out["embedding_diversity_per_input"] = sum(per) / len(per)
        if len(prompts) >= 2:
            out["embedding_diversity_across_input"] = embedding_diversity(emb[::args.n])
    assert all(math.isfinite(v) for v in out.values())
    return out
