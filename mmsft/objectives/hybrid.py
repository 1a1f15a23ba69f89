"""SFT–RL hybrids: one loss over a mixed batch of expert rows and on-policy rollouts (``expert_mask``).

CHORD (Zhang et al., "On-Policy RL Meets Off-Policy Experts: Harmonizing SFT and RL via Dynamic Weighting",
arXiv 2508.11408; reference implementation Trinity-RFT ``chord_policy_loss.py``):

    L = (1 − μ(step))·L_GRPO(on-policy rows) + μ(step)·L_SFT-φ(expert rows)
    L_SFT-φ = −mean_{expert tokens} sg[φ(p_t)]·log p_t,  φ(p) = p(1 − p)   (φ off: plain NLL)
    μ(step) = μ_peak·step/W                                           step < W
            = μ_valley + (μ_peak − μ_valley)·½(1 + cos(π(step − W)/D))  W ≤ step < W + D
            = μ_valley                                                 otherwise

Each term is aggregated over its own rows with step-wide counts of those rows only (``TokenBatch.row_normalizers``),
so gradient accumulation yields per-type global means; a micro-batch without rows of a type contributes 0 for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.policy_losses import ClipArgs, masked_mean, ppo_clip_terms
from mmsft.objectives.registry import register_loss


@dataclass
class ChordArgs:
    """CHORD arguments; defaults are the paper's CHORD-φ setting (constant μ = 0.1, φ on)."""

    mu_peak: float = field(default=0.1, metadata={"help": "Peak μ (weight of the expert SFT term).", "ge": 0, "le": 1})
    mu_valley: float = field(default=0.1, metadata={"help": "Final μ after the cosine decay.", "ge": 0, "le": 1})
    mu_warmup_steps: int = field(default=0, metadata={"help": "W: linear warm-up of μ from 0 to μ_peak.", "ge": 0})
    mu_decay_steps: int = field(default=0, metadata={"help": "D: cosine decay from μ_peak to μ_valley.", "ge": 0})
    phi: bool = field(default=True, metadata={"help": "Weight expert tokens by φ(p) = p(1 − p) (CHORD-φ)."})
    cutoff_prob: float = field(default=1.0, metadata={"help": "Clamp log p ≤ log(cutoff) on expert tokens "
                                                              "(1 disables).", "gt": 0, "le": 1})
    clip_low: float = field(default=0.2, metadata={"help": "PPO clip ε_low of the on-policy term.", "ge": 0})
    clip_high: float = field(default=0.2, metadata={"help": "PPO clip ε_high of the on-policy term.", "ge": 0})
    dual_clip: float = field(default=0.0, metadata={"help": "Dual clip of the on-policy term (0 disables).", "ge": 0})


def chord_mu(step: int, args: ChordArgs) -> float:
    """The step-aware μ schedule (warm-up, cosine decay, floor)."""
    warm, decay = args.mu_warmup_steps, args.mu_decay_steps
    if step < warm:
        return args.mu_peak * step / warm
    if step < warm + decay:
        return args.mu_valley + (args.mu_peak - args.mu_valley) * 0.5 * (1 + math.cos(math.pi * (step - warm) / decay))
    return args.mu_valley


@register_loss("chord", requires=("logp", "old_logp", "advantages", "expert_mask"), args=ChordArgs)
def chord_loss(batch: TokenBatch, args: ChordArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """CHORD (arXiv 2508.11408): see the module docstring."""
    expert_rows = batch.expert_mask.to(torch.bool).view(-1, 1)
    mask = batch.loss_mask.to(torch.bool)
    expert_tokens, policy_tokens = mask & expert_rows, mask & ~expert_rows
    mu = chord_mu(batch.step, args)
    metrics: dict[str, float] = {"chord/mu": mu}
    # on-policy rows: PPO-clip (expert rows carry zero advantages and are masked out of this term)
    old = torch.where(expert_rows, batch.logp.detach(), batch.old_logp)
    pg, pg_metrics = ppo_clip_terms(TokenBatch(logp=batch.logp, loss_mask=policy_tokens, old_logp=old,
                                               advantages=batch.advantages),
                                    ClipArgs(args.clip_low, args.clip_high, args.dual_clip))
    policy_loss = batch.aggregate(pg, policy_tokens, batch.row_normalizers.get("policy"))
    # expert rows: φ-weighted NLL
    logp = batch.logp.float()
    if args.cutoff_prob < 1.0:
        logp = logp.clamp(max=math.log(args.cutoff_prob))
    prob = batch.logp.detach().float().exp()
    weight = prob * (1.0 - prob) if args.phi else torch.ones_like(prob)
    sft_loss = batch.aggregate(-weight * logp, expert_tokens, batch.row_normalizers.get("expert"))
    metrics.update({"chord/clipfrac": pg_metrics["clipfrac"], "chord/expert_nll": masked_mean(-batch.logp, expert_tokens),
                    "chord/phi_mean": masked_mean(weight, expert_tokens)})
    return (1.0 - mu) * policy_loss + mu * sft_loss, metrics


# ---- Prefix-RFT -----------------------------------------------------------------------------------------------------
@dataclass
class PrefixRFTArgs:
    """Prefix-RFT arguments (Huang et al., arXiv 2507.01679; no code released — the prefix count per group and the
    exact sampling of the prefix fraction are unverified). The prefix arguments are read by the ``prefix_rft`` stage."""

    entropy_ratio: float = field(default=0.2, metadata={"help": "ρ: fraction of each demonstration prefix's tokens, "
                                                                 "highest policy entropy first, that get gradient.",
                                                         "gt": 0, "le": 1})
    prefix_max: float = field(default=0.95, metadata={"help": "Prefix fraction c of the demonstration at the start "
                                                              "(cosine decay to prefix_min over training).",
                                                      "ge": 0, "le": 1})
    prefix_min: float = field(default=0.05, metadata={"help": "Prefix fraction c at the end of training.",
                                                      "ge": 0, "le": 1})
    num_prefixed: int = field(default=1, metadata={"help": "Group members per prompt that continue a demonstration "
                                                           "prefix [unverified; LUFFY-style setups use 1 of 8].",
                                                   "ge": 0})
    clip_low: float = field(default=0.2, metadata={"help": "PPO clip ε_low.", "ge": 0})
    clip_high: float = field(default=0.2, metadata={"help": "PPO clip ε_high.", "ge": 0})


def top_entropy_tokens(entropy: torch.Tensor, candidates: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per row, the ceil(ratio·n) candidate positions of highest entropy (n = the row's candidates); (B, T) bool."""
    count = candidates.sum(-1)
    keep = torch.ceil(count.to(torch.float64) * ratio).to(torch.long)
    scores = torch.where(candidates, entropy.detach().float(), torch.full_like(entropy, float("-inf"), dtype=torch.float))
    order = scores.argsort(dim=-1, descending=True, stable=True)
    rank = order.argsort(dim=-1)
    return candidates & (rank < keep.unsqueeze(-1))


@register_loss("prefix_rft", requires=("logp", "old_logp", "advantages", "entropy", "prefix_mask"),
               args=PrefixRFTArgs)
def prefix_rft_loss(batch: TokenBatch, args: PrefixRFTArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Prefix-RFT (Huang et al., "Blending Supervised and Reinforcement Fine-Tuning with Prefix Sampling",
    arXiv 2507.01679): hybrid rollouts y = (y*_{1:L}, z) — a demonstration prefix of L = ⌊c·|y*|⌋ tokens (c decayed
    by cosine from 0.95 to 0.05 over training) continued by the policy — share a group with ordinary rollouts and one
    verifiable reward. The clipped surrogate covers every continuation token and, of the prefix tokens
    (``prefix_mask``), only the top-ρ fraction by current policy entropy (ρ = 20 %); the other prefix tokens get no
    gradient. The paper pairs it with Dr.GRPO advantages and a constant normaliser (preset ``prefix_rft``)."""
    mask = batch.loss_mask.to(torch.bool)
    prefix = batch.prefix_mask.to(torch.bool) & mask
    selected = top_entropy_tokens(batch.entropy, prefix, args.entropy_ratio)
    trained = (mask & ~prefix) | selected
    pg, pg_metrics = ppo_clip_terms(TokenBatch(logp=batch.logp, loss_mask=trained, old_logp=batch.old_logp,
                                               advantages=batch.advantages),
                                    ClipArgs(args.clip_low, args.clip_high, 0.0))
    loss = batch.aggregate(pg, trained)
    metrics = {"prefix_rft/clipfrac": pg_metrics["clipfrac"],
               "prefix_rft/prefix_tokens": float(prefix.sum()), "prefix_rft/selected_tokens": float(selected.sum())}
    return loss, metrics
