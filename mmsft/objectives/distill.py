"""Distillation losses: exact reverse KL over a restricted vocabulary (a VLA's 256 action bins, a classifier's label
tokens), and top-k distribution matching (GKD, forward top-k KD) on a teacher support plus a tail bucket.

Exact reverse KL (VLA-OPD, Zhong et al., arXiv 2603.26666; GKD, Agarwal et al., arXiv 2306.13649 with λ = 1, β → 1):
at every supervised (student-sampled) position,

    KL(π_θ ‖ π_T) = Σ_{v ∈ V_sub} π_θ(v) (log π_θ(v) − log π_T(v)),

differentiated through π_θ (both factors). Over a few hundred ids this is cheap and has no sampling variance, unlike
the single-sample estimator used by the ``opd`` advantage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.policy_losses import masked_mean
from mmsft.objectives.registry import register_loss
from mmsft.objectives.support import generalized_jsd, kl, with_tail


@dataclass
class ExactKLArgs:
    coef: float = field(default=1.0, metadata={"help": "Scale of the exact reverse-KL term.", "gt": 0})


@register_loss("reverse_kl_exact", requires=("logp", "logp_dist", "teacher_dist"), args=ExactKLArgs)
def reverse_kl_exact_loss(batch: TokenBatch, args: ExactKLArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Exact per-token reverse KL to the teacher over the restricted vocabulary; see the module docstring."""
    student = batch.logp_dist.float()
    teacher = batch.teacher_dist.float().to(student.device)
    per_token = (student.exp() * (student - teacher)).sum(-1)
    return args.coef * batch.aggregate(per_token), {"reverse_kl": masked_mean(per_token, batch.loss_mask)}


# ---- top-k distribution matching (GKD, forward top-k KD) -------------------------------------------------------------
@dataclass
class GkdArgs:
    """GKD arguments; defaults are TRL's GKDTrainer (lmbda 0.5, beta 0.5). The sampling temperature is
    ``rl.temperature`` (TRL: 0.9), applied to student and teacher log-probs alike."""

    beta: float = field(default=0.5, metadata={"help": "Generalised-JSD β: 0 = forward KL(teacher‖student), 1 = "
                                                       "reverse KL(student‖teacher).", "ge": 0, "le": 1})
    lmbda: float = field(default=0.5, metadata={"help": "λ: probability that a training sequence is sampled from the "
                                                        "student (read by the gkd stage; 1 = fully on-policy).",
                                                "ge": 0, "le": 1})
    topk: int = field(default=256, metadata={"help": "Support: the teacher's top-k ids per token plus a tail bucket "
                                                     "(0: every id — exact, vocabularies ≤ 4096).", "ge": 0})


@register_loss("gkd", requires=("logp", "support_ids", "logp_support", "teacher_support_logp"), args=GkdArgs)
def gkd_loss(batch: TokenBatch, args: GkdArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Generalised Knowledge Distillation (Agarwal et al., "On-Policy Distillation of Language Models: Learning from
    Self-Generated Mistakes", arXiv 2306.13649, ICLR 2024):

        L = E_{(x, y) ~ mixture} (1/|y|) Σ_t D_JSD(β)(p_T(·|x, y_<t) ‖ p_S(·|x, y_<t))
        D_JSD(β)(P‖Q) = β·KL(P‖M) + (1 − β)·KL(Q‖M),  M = β·P + (1 − β)·Q,

    the mixture taking the student's own samples with probability λ (the ``gkd`` stage) and dataset targets
    otherwise. Computed on the teacher's top-k support plus a tail bucket (:mod:`mmsft.objectives.support`; exact
    with ``topk=0``), never on B×T×V; token-mean by default.
    """
    teacher, student, live = with_tail(batch.teacher_support_logp.to(batch.logp.device), batch.logp_support)
    per_token = generalized_jsd(teacher, student, live, args.beta)
    return batch.aggregate(per_token), {"gkd/jsd": masked_mean(per_token, batch.loss_mask)}


@dataclass
class TopKKLArgs:
    """Forward top-k KL distillation arguments."""

    topk: int = field(default=64, metadata={"help": "The teacher's top-k ids per token (plus a tail bucket; 0: every "
                                                    "id — exact, vocabularies ≤ 4096).", "ge": 0})
    coef: float = field(default=1.0, metadata={"help": "Scale of the KL term.", "gt": 0})


@register_loss("distill_topk_kl", requires=("logp", "support_ids", "logp_support", "teacher_support_logp"),
               args=TopKKLArgs)
def distill_topk_kl_loss(batch: TokenBatch, args: TopKKLArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward (mode-covering) KL distillation on the teacher's top-k logits (Hinton et al., arXiv 1503.02531; the
    sparse top-k form of word-level KD, Kim & Rush, arXiv 1606.07947):

        ℓ_t = KL(p_T ‖ p_S) over {top-k ids of p_T} ∪ {tail},

    on dataset targets (stage sft: supervised KD), student samples (stage distill: on-policy forward KL) or a mixture
    (stage gkd). The same as ``gkd`` with β = 0, with its own top-k default.
    """
    teacher, student, live = with_tail(batch.teacher_support_logp.to(batch.logp.device), batch.logp_support)
    per_token = kl(teacher, student, live)
    return args.coef * batch.aggregate(per_token), {"distill/forward_kl": masked_mean(per_token, batch.loss_mask)}
