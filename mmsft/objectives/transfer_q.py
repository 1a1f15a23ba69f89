"""Transfer Q* — value-guided decoding with a baseline model (Chakraborty et al., "Transfer Q Star: Principled
Decoding for LLM Alignment", arXiv 2405.20495, NeurIPS 2024; spec ../shared/reference/objectives_rl.md §9.1).

Decoding-time alignment, no training. At every step t with state s_t = (x, y_<t) and candidates z in the top-k of the
policy π (the SFT model), the next token is chosen by

    π_TQ(z | s_t) ∝ π(z | s_t) · exp(α · Q̂(s_t, z)),

    direct transfer:    Q̂(s_t, z) = r(x, [y_<t, z, τ]),  τ ~ ρ_BL(· | x, y_<t, z) — a short continuation of the
                        baseline model ρ_BL (a model aligned to the target reward r, e.g. a DPO model);
    indirect transfer:  Q̂ = exp((r − r_BL)/β) · r  (ρ_BL aligned to another reward r_BL; importance correction).

As in the released code: k = 10 candidates, α = 1, greedy selection ``argmax_z log π(z) + α·Q̂`` (``sample=true``
draws from π_TQ with ``seed`` instead), greedy baseline continuations of 20 tokens (5 for indirect), the code's
exp(0.5·(r − r_BL)) is β = 2. Rewards are any registered rewards (``fn(samples, completions)``), so the target reward
can be a verifier, a reward model wrapped in a plugin, or a length rule.

Cost per generated token: one policy forward and k baseline continuations of ``continuation_tokens`` tokens plus k
reward calls — about k × continuation_tokens extra forwards per token; an evaluation / decoding utility, not a
training objective. Use it as the ``transfer_q`` evaluator (pipeline / ``mmsft eval``; keys of
:class:`TransferQEvalArgs`) or call :func:`transfer_q_decode` from a script. Text and vision-language models alike:
every candidate row carries the prompt's own images (the adapter collates them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from mmsft.eval.evaluators import (EVALUATORS, EvalContext, EvaluatorError, arg_field, load_samples, parse_args,
                                   write_jsonl)

ScoreFn = Callable[[list[Any], list[str]], list[float]]


@dataclass
class TransferQArgs:
    """Transfer Q* decoding arguments (released code defaults)."""

    k: int = field(default=10, metadata={"help": "Candidates per step: the policy's top-k tokens."})
    alpha: float = field(default=1.0, metadata={"help": "α: weight of the estimated Q̂ against log π."})
    continuation_tokens: int = field(default=20, metadata={"help": "Greedy baseline continuation per candidate "
                                                                   "(code: 20 direct, 5 indirect)."})
    mode: str = field(default="direct", metadata={"help": "direct (Q̂ = r) or indirect (Q̂ = exp((r − r_BL)/β)·r).",
                                                   "choices": ("direct", "indirect")})
    beta: float = field(default=2.0, metadata={"help": "β of the indirect importance weight (code: exp(0.5·Δr), "
                                                       "β = 2)."})
    sample: bool = field(default=False, metadata={"help": "Sample from π_TQ (seeded) instead of the greedy argmax."})
    seed: int = field(default=0, metadata={"help": "Seed when sample=true."})


def transfer_q_scores(cand_logp: torch.Tensor, rewards: torch.Tensor, args: TransferQArgs,
                      baseline_rewards: torch.Tensor | None = None) -> torch.Tensor:
    """log π(z) + α·Q̂(z) per candidate (the unnormalised log of π_TQ)."""
    if args.mode == "indirect":
        if baseline_rewards is None:
            raise ValueError("Transfer Q* indirect mode needs the baseline's own reward r_BL (baseline_rewards)")
        q = torch.exp((rewards - baseline_rewards) / args.beta) * rewards
    else:
        q = rewards
    return cand_logp + args.alpha * q


@dataclass
class TransferQResult:
    text: str
    token_ids: list[int]
    steps: list[dict[str, Any]]  # per step: candidates, their rewards and scores, the choice


def _check(args: TransferQArgs) -> None:
    if args.k < 1 or args.continuation_tokens < 0 or args.beta <= 0 or not math.isfinite(args.alpha):
        raise ValueError(f"Transfer Q*: need k >= 1, continuation_tokens >= 0, beta > 0 and a finite alpha; got "
                         f"k={args.k}, continuation_tokens={args.continuation_tokens}, beta={args.beta}, "
                         f"alpha={args.alpha}")
    if args.mode not in ("direct", "indirect"):
        raise ValueError(f"Transfer Q*: mode must be direct or indirect, got {args.mode!r}")


@torch.no_grad()
def transfer_q_decode(policy: Any, baseline: Any, adapter: Any, samples: Sequence[Any], score: ScoreFn,
                      args: TransferQArgs, max_new_tokens: int = 32,
                      baseline_score: ScoreFn | None = None) -> list[TransferQResult]:
    """Decode every sample's prompt with Transfer Q* (module docstring). ``policy`` / ``baseline``: HF models sharing
    ``adapter``'s tokenizer; ``score(samples, completions) -> rewards`` is the target reward r, ``baseline_score`` the
    baseline's reward r_BL (indirect mode)."""
    _check(args)
    if args.mode == "indirect" and baseline_score is None:
        raise ValueError("Transfer Q* indirect mode needs baseline_score (the reward the baseline was aligned to)")
    generator = torch.Generator().manual_seed(args.seed)
    return [_decode_one(policy, baseline, adapter, sample, score, args, max_new_tokens, baseline_score, generator)
            for sample in samples]


def _decode_one(policy: Any, baseline: Any, adapter: Any, sample: Any, score: ScoreFn, args: TransferQArgs,
                max_new_tokens: int, baseline_score: ScoreFn | None, generator: torch.Generator) -> TransferQResult:
    from mmsft.models.adapters import Encoded

    prompt = adapter.encode(sample, with_target=False)
    device = next(policy.parameters()).device
    stops = set(adapter.stop_token_ids)
    suppressed = torch.tensor(sorted(set(adapter.suppressed_token_ids)), dtype=torch.long)
    generated: list[int] = []
    steps: list[dict[str, Any]] = []

    def rows(tails: list[list[int]]) -> Any:
        items = [Encoded(prompt.sample_id, torch.cat([prompt.input_ids, torch.tensor(t, dtype=torch.long)]),
                         torch.zeros(len(prompt) + len(t), dtype=torch.bool), prompt.mm) for t in tails]
        return adapter.collate(items, padding_side="left").to(device)

    for _ in range(max_new_tokens):
        logits = policy(**rows([generated]).inputs, use_cache=False).logits[0, -1].float()
        if len(suppressed):
            logits[suppressed.to(logits.device)] = float("-inf")
        logp = torch.log_softmax(logits, -1)
        k = min(args.k, int(torch.isfinite(logp).sum()))
        cand_logp, cand = logp.topk(k)
        tails = [generated + [int(z)] for z in cand.tolist()]
        texts = _continue(baseline, adapter, rows, tails, args.continuation_tokens, stops)
        rewards = torch.tensor(score([sample] * k, texts), dtype=torch.float32)
        base_r = (torch.tensor(baseline_score([sample] * k, texts), dtype=torch.float32)
                  if args.mode == "indirect" and baseline_score is not None else None)
        scores = transfer_q_scores(cand_logp.cpu(), rewards, args, base_r)
        if args.sample:
            pick = int(torch.multinomial(torch.softmax(scores, -1), 1, generator=generator))
        else:
            pick = int(scores.argmax())
        token = int(cand[pick])
        steps.append({"candidates": cand.tolist(), "rewards": rewards.tolist(), "scores": scores.tolist(),
                      "choice": token})
        generated.append(token)
        if token in stops:
            break
    return TransferQResult(adapter.decode(generated, skip_special_tokens=True), generated, steps)


def _continue(baseline: Any, adapter: Any, rows: Callable[[list[list[int]]], Any], tails: list[list[int]],
              length: int, stops: set[int]) -> list[str]:
    """The decoded completion of each candidate tail followed by a greedy baseline continuation of ``length`` tokens
    (none after a stop token); continuations end at their first stop token."""
    texts: list[str | None] = [adapter.decode(t, skip_special_tokens=True) if t[-1] in stops or length == 0 else None
                               for t in tails]
    open_rows = [i for i, t in enumerate(texts) if t is None]
    if open_rows:
        batch = rows([tails[i] for i in open_rows])
        kwargs: dict[str, Any] = {"max_new_tokens": length, "do_sample": False, "temperature": None, "top_p": None,
                                  "top_k": None, "eos_token_id": sorted(stops) or None,
                                  "pad_token_id": adapter.pad_token_id}
        if adapter.suppressed_token_ids:
            kwargs["suppress_tokens"] = adapter.suppressed_token_ids
        out = baseline.generate(**batch.inputs, **kwargs)
        new = out[:, batch.inputs["input_ids"].shape[1]:].cpu().tolist()
        for row, i in enumerate(open_rows):
            cont = new[row]
            cut = next((j + 1 for j, tok in enumerate(cont) if tok in stops), len(cont))
            texts[i] = adapter.decode(tails[i] + cont[:cut], skip_special_tokens=True)
    return [t or "" for t in texts]


# ---- evaluator ------------------------------------------------------------------------------------------------------
@dataclass
class TransferQEvalArgs:
    path: str = arg_field("", "JSONL file or save_to_disk folder of prompts (with whatever the rewards read).")
    baseline: str = arg_field("", "Baseline model folder ρ_BL (same tokenizer), aligned to the target reward.")
    rewards: str = arg_field("", "Target reward r: comma-separated reward names (registered or module:function).")
    reward_weights: str = arg_field("", "Comma-separated weights, one per reward (empty: all 1).")
    baseline_rewards: str = arg_field("", "Indirect mode: the reward r_BL the baseline was aligned to.")
    k: int = arg_field(10, "Candidates per step (policy top-k).")
    alpha: float = arg_field(1.0, "Weight α of Q̂.")
    continuation_tokens: int = arg_field(20, "Greedy baseline continuation per candidate.")
    mode: str = arg_field("direct", "direct or indirect transfer.", ("direct", "indirect"))
    beta: float = arg_field(2.0, "β of the indirect importance weight.")
    sample: bool = arg_field(False, "Sample from π_TQ instead of the greedy argmax.")
    seed: int = arg_field(0, "Seed when sample=true.")
    max_samples: int = arg_field(0, "Decode the first N prompts (0: all).")
    max_new_tokens: int = arg_field(32, "Generation cap.")


def _reward_fn(names_text: str, weights_text: str, where: str, key: str) -> ScoreFn:
    from mmsft.rewards import compute_rewards

    names = [n.strip() for n in names_text.split(",") if n.strip()]
    if not names:
        raise EvaluatorError(f"{where}: key {key!r} is required (comma-separated reward names)")
    try:
        weights = [float(w) for w in weights_text.split(",") if w.strip()] or None
    except ValueError:
        raise EvaluatorError(f"{where}: reward_weights {weights_text!r}: expected comma-separated numbers") from None
    return lambda samples, texts: compute_rewards(names, weights, samples, texts).total


@EVALUATORS.register("transfer_q", metric="reward_mean", args=TransferQEvalArgs)
def transfer_q_eval(model_dir: Path, spec: dict[str, Any], ctx: EvalContext) -> dict[str, float]:
    """Decode the prompts with Transfer Q* (the model under evaluation as π, ``baseline`` as ρ_BL) and report the
    target reward's mean; writes ``completions.jsonl`` (text, reward, per-step candidates) to ``ctx.out_dir``."""
    from mmsft.eval.evaluators import load_eval_model
    from mmsft.train.scorers import check_same_tokenizer

    a = parse_args(TransferQEvalArgs, spec, ctx.where)
    if not a.baseline:
        raise EvaluatorError(f"{ctx.where}: key 'baseline' is required (the baseline model folder ρ_BL)")
    score = _reward_fn(a.rewards, a.reward_weights, ctx.where, "rewards")
    baseline_score = _reward_fn(a.baseline_rewards, "", ctx.where, "baseline_rewards") if a.mode == "indirect" else None
    args = TransferQArgs(k=a.k, alpha=a.alpha, continuation_tokens=a.continuation_tokens, mode=a.mode, beta=a.beta,
                         sample=a.sample, seed=a.seed)
    _check(args)
    samples = load_samples(a.path, a.max_samples, ctx)
    loaded, adapter = ctx.model(model_dir)
    base_loaded, _ = load_eval_model(a.baseline, ctx.settings)
    check_same_tokenizer(loaded.processor, base_loaded.processor, a.baseline)
    results = transfer_q_decode(loaded.model, base_loaded.model, adapter, samples, score, args, a.max_new_tokens,
                                baseline_score)
    texts = [r.text for r in results]
    rewards = score(list(samples), texts)
    write_jsonl(ctx.out_dir / "completions.jsonl",
                [{"id": s.id, "completion": r.text, "reward": v, "steps": r.steps}
                 for s, r, v in zip(samples, results, rewards)])
    return {"reward_mean": sum(rewards) / max(len(rewards), 1), "tokens_mean":
            sum(len(r.token_ids) for r in results) / max(len(results), 1)}
