"""Distillation losses over a restricted vocabulary (a VLA's 256 action bins, a classifier's label tokens).

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
