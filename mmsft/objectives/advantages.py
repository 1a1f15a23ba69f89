"""Advantage estimators (registry ``ADVANTAGES``). Each returns per-token advantages (N, L) for N rollouts whose
L response slots are marked by ``inputs.mask``; sequence-level estimators broadcast over the response tokens.

Formulas follow verl ``core_algos`` and the papers cited per entry; group statistics use the unbiased std (N−1) as
verl and TRL do, and a singleton group keeps its reward (mean 0, std 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmsft.objectives.registry import register_advantage


@dataclass
class AdvantageInputs:
    rewards: torch.Tensor  # (N,) scalar outcome rewards
    group_id: torch.Tensor  # (N,) prompt ids: rollouts of one prompt share an id
    mask: torch.Tensor  # (N, L) response tokens
    old_logp: torch.Tensor | None = None  # (N, L) sampler / old-policy log-probs
    teacher_logp: torch.Tensor | None = None  # (N, L) teacher log-probs of the same tokens (OPD)
    token_penalty: torch.Tensor | None = None  # (N, L) per-token reward penalty, e.g. β·k1 (KL in reward)
    ref_logp: torch.Tensor | None = None  # (N, L) reference (starting-weights) log-probs, when the estimator requires
    values: torch.Tensor | None = None  # (N, L) the critic's old values V_old(s_t) (actor-critic estimators)


@dataclass
class NormArgs:
    """Arguments of estimators that divide by a group std or whiten."""

    eps: float = field(default=1e-6, metadata={"help": "ε added to the std in group normalisation / whitening.",
                                               "gt": 0})


@dataclass
class BaselineArgs:
    """Estimators without arguments of their own (mean / leave-one-out baselines)."""


@dataclass
class OPDArgs:
    """On-policy distillation advantage."""

    coef: float = field(default=1.0, metadata={"help": "Scale c of A = −c(log π_student − log π_teacher).", "gt": 0})


def group_stats(rewards: torch.Tensor, group_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-rollout group mean, unbiased std and size (singleton groups: mean 0, std 1)."""
    _, inverse, counts = torch.unique(group_id, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(counts), dtype=rewards.dtype).index_add_(0, inverse, rewards)
    means = sums / counts
    squares = torch.zeros(len(counts), dtype=rewards.dtype).index_add_(0, inverse, (rewards - means[inverse]) ** 2)
    stds = torch.sqrt(squares / (counts - 1).clamp(min=1))
    single = counts[inverse] == 1
    mean = torch.where(single, torch.zeros_like(rewards), means[inverse])
    std = torch.where(single, torch.ones_like(rewards), stds[inverse])
    return mean, std, counts[inverse].to(rewards.dtype)


def _broadcast(per_seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return per_seq.unsqueeze(-1) * mask.to(per_seq.dtype)


def _whiten(values: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    m = mask.to(values.dtype)
    count = m.sum().clamp(min=1.0)
    mean = (values * m).sum() / count
    var = (((values - mean) * m) ** 2).sum() / (count - 1).clamp(min=1.0)
    return (values - mean) * torch.rsqrt(var + eps) * m


def _sequence_rewards(inputs: AdvantageInputs) -> torch.Tensor:
    rewards = inputs.rewards.float()
    if inputs.token_penalty is not None:
        rewards = rewards - (inputs.token_penalty * inputs.mask).sum(-1)
    return rewards


@register_advantage("grpo", args=NormArgs)
def grpo_advantage(inputs: AdvantageInputs, args: NormArgs) -> torch.Tensor:
    """GRPO (Shao et al., DeepSeekMath, arXiv 2402.03300): A_i = (R_i − mean_G R) / (std_G R + eps)."""
    rewards = _sequence_rewards(inputs)
    mean, std, _ = group_stats(rewards, inputs.group_id)
    return _broadcast((rewards - mean) / (std + args.eps), inputs.mask)


@register_advantage("dr_grpo", args=BaselineArgs)
def dr_grpo_advantage(inputs: AdvantageInputs, args: BaselineArgs) -> torch.Tensor:
    """Dr.GRPO (Liu et al., "Understanding R1-Zero-Like Training", arXiv 2503.20783): A_i = R_i − mean_G R."""
    rewards = _sequence_rewards(inputs)
    mean, _, _ = group_stats(rewards, inputs.group_id)
    return _broadcast(rewards - mean, inputs.mask)


@register_advantage("rloo", args=BaselineArgs)
def rloo_advantage(inputs: AdvantageInputs, args: BaselineArgs) -> torch.Tensor:
    """RLOO (Ahmadian et al., "Back to Basics", arXiv 2402.14740): A_i = R_i − mean_{j≠i} R_j = k/(k−1)(R_i − mean);
    a singleton group keeps A = R."""
    rewards = _sequence_rewards(inputs)
    mean, _, size = group_stats(rewards, inputs.group_id)
    scale = torch.where(size > 1, size / (size - 1).clamp(min=1.0), torch.ones_like(size))
    return _broadcast((rewards - mean) * scale, inputs.mask)


@register_advantage("reinforce_pp", args=NormArgs)
def reinforce_pp_advantage(inputs: AdvantageInputs, args: NormArgs) -> torch.Tensor:
    """REINFORCE++ (Hu et al., arXiv 2501.03262): token rewards r_t = 1[t=last]·R − β·k1_t, returns
    G_t = Σ_{s≥t} r_s (γ=1), then global whitening over every response token of the batch."""
    mask = inputs.mask.float()
    token_rewards = -(inputs.token_penalty * mask) if inputs.token_penalty is not None else torch.zeros_like(mask)
    last = (mask.cumsum(-1) == mask.sum(-1, keepdim=True)) & (mask > 0)
    token_rewards = token_rewards + last.float() * inputs.rewards.float().unsqueeze(-1)
    returns = token_rewards.flip(-1).cumsum(-1).flip(-1) * mask
    return _whiten(returns, inputs.mask, args.eps)


@register_advantage("reinforce_pp_baseline", args=NormArgs)
def reinforce_pp_baseline_advantage(inputs: AdvantageInputs, args: NormArgs) -> torch.Tensor:
    """REINFORCE++-baseline (Hu et al., arXiv 2501.03262): A_i = R_i − mean_G R, then global whitening over tokens."""
    rewards = _sequence_rewards(inputs)
    mean, _, _ = group_stats(rewards, inputs.group_id)
    return _whiten(_broadcast(rewards - mean, inputs.mask), inputs.mask, args.eps)


@register_advantage("opd", requires=("old_logp", "teacher_logp"), args=OPDArgs)
def opd_advantage(inputs: AdvantageInputs, args: OPDArgs) -> torch.Tensor:
    """On-policy distillation (Agarwal et al., GKD, arXiv 2306.13649; Lu et al., Thinking Machines 2025; VLA-OPD,
    arXiv 2603.26666): A_t = −c·(log π_student(y_t) − log π_teacher(y_t)) on the student's own sampled tokens, a
    single-sample reverse-KL estimate used as a detached per-token reward."""
    if inputs.old_logp is None or inputs.teacher_logp is None:
        raise ValueError("the opd advantage needs the student's sampled log-probs and the teacher's log-probs")
    return -args.coef * (inputs.old_logp - inputs.teacher_logp) * inputs.mask.float()
