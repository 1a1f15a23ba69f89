"""On-policy distillation with REINFORCE: the per-token reverse-KL advantage recomputed with the *current* student.

VLA-OPD (Zhong et al., arXiv 2603.26666) and RLinf's OPD for OpenVLA-OFT offer two updates on the student's own
sampled action tokens a_t with teacher log-probs log π_T(a_t):

* PPO-clip (``algorithm: opd``): the advantage A_t = −(log π_old(a_t) − log π_T(a_t)) is frozen at rollout time
  and the clipped surrogate of the importance ratio is minimised;
* REINFORCE (this loss, ``opd_reinforce``): A_t = −(log π_θ(a_t) − log π_T(a_t)) is recomputed from the current
  student at every update and the loss is

      ℓ_t = coef · sg(log π_θ(a_t) − log π_T(a_t)) · log π_θ(a_t),

  whose gradient E_{a∼π_θ}[(log π_θ(a) − log π_T(a)) ∇ log π_θ(a)] is the score-function gradient of the reverse
  KL(π_θ ‖ π_T) (the E[∇ log π_θ] = 0 term dropped). It needs no old log-probs; with ``rl.ppo_epochs > 1`` every
  pass uses the advantage of the weights it updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.policy_losses import masked_mean
from mmsft.objectives.registry import register_loss


@dataclass
class OPDReinforceArgs:
    coef: float = field(default=1.0, metadata={"help": "Scale of the reverse-KL policy gradient.", "gt": 0})


@register_loss("opd_reinforce", requires=("logp", "teacher_logp"), args=OPDReinforceArgs)
def opd_reinforce_loss(batch: TokenBatch, args: OPDReinforceArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """REINFORCE on the sampled reverse-KL advantage, recomputed with the current student; see the module
    docstring."""
    teacher = batch.teacher_logp.to(batch.logp.dtype).to(batch.logp.device)
    gap = (batch.logp - teacher).detach()
    per_token = args.coef * gap * batch.logp
    return batch.aggregate(per_token), {"reverse_kl_sampled": masked_mean(gap, batch.loss_mask)}


@dataclass
class TeacherCEArgs:
    coef: float = field(default=1.0, metadata={"help": "Scale of the cross-entropy to the teacher.", "gt": 0})


@register_loss("teacher_ce_exact", requires=("logp", "logp_dist", "teacher_dist"), args=TeacherCEArgs)
def teacher_ce_exact_loss(batch: TokenBatch, args: TeacherCEArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy to the teacher's distribution over the restricted vocabulary at the student's visited positions,
    −Σ_v π_T(v) log π_θ(v) (forward KL(π_T ‖ π_θ) plus the teacher's entropy): DAgger with soft labels (Ross et al.,
    arXiv 1011.0686) when the teacher is an expert queried in the states the student reached, and the forward-KL
    baseline VLA-OPD (arXiv 2603.26666) compares against."""
    student = batch.logp_dist.float()
    teacher = batch.teacher_dist.float().to(student.device)
    per_token = -(teacher.exp() * student).sum(-1)
    return args.coef * batch.aggregate(per_token), {"teacher_ce": masked_mean(per_token, batch.loss_mask)}
