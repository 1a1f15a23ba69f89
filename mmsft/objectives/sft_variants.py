"""SFT-family losses beyond plain cross-entropy and DFT (specs: ../shared/reference/objectives_sft.md §1b–5, 13).

Every loss is written over :class:`TokenBatch` and aggregated with ``objective.loss_agg_mode`` over the whole
optimizer step, so text, image, video and action-token models train the same way; per-token weights from the data
(``weight`` / ``token_weights``) multiply the per-token loss where the paper's loss is token-level.

* ``asft`` — Anchored SFT (Zhu et al., arXiv 2509.23753): DFT plus a forward-KL anchor to the frozen base model.
* ``otr`` — One-Token Rollout (Ming et al., arXiv 2509.26313): token-level REINFORCE on samples from the tempered policy
  (Monte Carlo), or its zero-variance closed form.
* ``curio_sft`` — CurioSFT (Wang et al., arXiv 2602.02244): CE + K2 pull toward a lagged, heated self-teacher.
* ``poft`` — Preference-oriented SFT (Fan et al., arXiv 2412.12865): a sequence logistic against offline reference
  scores.
* ``masked_ft`` — masked (diffusion-inspired) fine-tuning (Pan et al., arXiv 2510.09885): CE on samples rewritten by
  :func:`mmsft.data.transforms.masked_reconstruction`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from mmsft.data.transforms import MaskedReconstructionArgs, masked_reconstruction_transform
from mmsft.objectives.batch import StepNormalizer, TokenBatch
from mmsft.objectives.policy_losses import masked_mean
from mmsft.objectives.registry import register_loss
from mmsft.objectives.sft import _metrics, _weights, sft_loss
from mmsft.objectives.support import kl, with_tail

TokenFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


# ---- ASFT -----------------------------------------------------------------------------------------------------------
@dataclass
class AsftArgs:
    """ASFT arguments: λ of the ICLR 2026 paper (the released code and LLaMA-Factory default to 0.1)."""

    kl_weight: float = field(default=0.05, metadata={"help": "λ of the KL(π_ref‖π_θ) anchor (paper 0.05; code 0.1; "
                                                              "≈0.03 suggested under bf16).", "ge": 0})
    topk: int = field(default=256, metadata={"help": "Support of the anchor: the reference's top-k ids per token plus "
                                                     "a tail bucket (0: every id — exact, vocabularies ≤ 4096).",
                                             "ge": 0})


@register_loss("asft", requires=("logp", "support_ids", "logp_support", "ref_support_logp"), args=AsftArgs)
def asft_loss(batch: TokenBatch, args: AsftArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Anchored SFT (Zhu et al., "Anchored Supervised Fine-Tuning", arXiv 2509.23753, ICLR 2026, Eq. 6):

        ℓ_t = −sg(p_t)·log p_t + λ·KL(π_ref(·|s_t) ‖ π_θ(·|s_t)),   p_t = π_θ(y_t | s_t),

    DFT's rectified CE plus a *forward* KL to the frozen initial model (the reference scorer: the starting weights, the
    adapter-disabled network under LoRA), computed on the reference's top-k support with a tail bucket
    (:mod:`mmsft.objectives.support`; exact with ``topk=0``), token-mean over response tokens. The anchor's gradient
    −Σ_v π_ref(v)∇log π_θ(v) is soft-label distillation back to the base. The cheap label-only variant (k3 on the
    target token; Palmyra x6 report) is ``dft`` with ``objective.kl`` (preset ``asft_k3``).
    """
    logp = batch.logp.float()
    dft = -_weights(batch) * logp.detach().exp() * logp
    ref, policy, live = with_tail(batch.ref_support_logp.to(logp.device), batch.logp_support)
    anchor = kl(ref, policy, live)
    loss = batch.aggregate(dft + args.kl_weight * anchor)
    metrics = _metrics(batch)
    metrics.update({"asft/kl_ref": masked_mean(anchor, batch.loss_mask),
                    "asft/dft": masked_mean(dft, batch.loss_mask)})
    return loss, metrics


# ---- OTR ------------------------------------------------------------------------------------------------------------
@dataclass
class OtrArgs:
    """OTR arguments. τ and β were not recoverable from the paper (no code was released); the defaults follow the
    reviews' description (τ > 1 to explore, a slightly negative β) and are marked unverified in docs/objectives.md."""

    mode: str = field(default="exact", metadata={"help": "exact: the zero-variance closed form; mc: K sampled tokens "
                                                          "per position (paper reproduction).",
                                                  "choices": ("exact", "mc")})
    tau: float = field(default=1.2, metadata={"help": "Temperature τ of the (detached) sampling distribution q_τ "
                                                      "[unverified; the paper says τ > 1].", "gt": 0})
    beta: float = field(default=-0.1, metadata={"help": "Reward β of a sampled token that is not the gold token "
                                                        "[unverified; reviews: slightly negative]."})
    num_samples: int = field(default=256, metadata={"help": "K samples per position in mc mode (paper: 256).",
                                                    "ge": 1})


def otr_token_fn(args: OtrArgs) -> TokenFn:
    """Per-token OTR objective term (differentiable), computed inside the LM-head chunk from the full log-softmax."""

    def fn(log_probs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
           ) -> dict[str, torch.Tensor]:
        q = torch.softmax(log_probs.detach() / args.tau, dim=-1)
        if args.mode == "exact":
            q_gold = q.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            gold = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            term = (1.0 - args.beta) * q_gold * gold + args.beta * (q * log_probs).sum(-1)
        elif len(targets) == 0:
            term = log_probs.sum(-1)
        else:
            sampled = torch.multinomial(q, args.num_samples, replacement=True)
            reward = torch.where(sampled == targets.unsqueeze(-1), 1.0, args.beta)
            term = (reward * log_probs.gather(-1, sampled)).mean(-1)
        return {"otr_term": term}

    return fn


@register_loss("otr", requires=("logp",), args=OtrArgs, token_fn=otr_token_fn)
def otr_loss(batch: TokenBatch, args: OtrArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """One-Token Rollout (Ming et al., "One-Token Rollout: Guiding Supervised Fine-Tuning of LLMs with Policy
    Gradient", arXiv 2509.26313). Each position is a one-step episode: K tokens a_k ~ q_τ = sg(softmax(z/τ)), reward
    r = 1 for the gold token and β otherwise, REINFORCE on the un-tempered policy:

        mc:     ℓ_t = −(1/K) Σ_k r(a_k)·log π_θ(a_k | s_t)
        exact:  ℓ_t = −[(1 − β)·q_τ(y_t)·log π_θ(y_t) + β·Σ_v q_τ(v)·log π_θ(v)]   (the same expectation, no variance)

    At τ = 1 the β term has zero expected gradient and OTR is (1 − β)·DFT. Token-mean (the paper's per-sequence 1/T
    biases toward short sequences; objective.loss_agg_mode=seq-mean-token-mean reproduces it).
    """
    term = batch.extras["otr_term"]
    loss = batch.aggregate(-_weights(batch) * term)
    metrics = _metrics(batch)
    metrics["otr/term"] = masked_mean(term, batch.loss_mask)
    return loss, metrics


# ---- CurioSFT -------------------------------------------------------------------------------------------------------
@dataclass
class CurioArgs:
    """CurioSFT arguments; defaults from the released recipe (custom_verl/recipe/curio_sft, scripts/1_sft.sh). The
    teacher arguments are read by the self-teacher scorer (``rl.teacher=mmsft.train.self_teacher:curio_teacher``)."""

    alpha: float = field(default=1.0, metadata={"help": "Weight α of the K2 term ½(log π − sg(log q))².", "ge": 0})
    tau_min: float = field(default=1.1, metadata={"help": "Lower end of the per-token teacher temperature.", "gt": 0})
    tau_max: float = field(default=1.5, metadata={"help": "Upper end of the per-token teacher temperature.", "gt": 0})
    pivot: float = field(default=1.2, metadata={"help": "Entropy pivot c of the boost σ(slope·(H0 − c)) (nats)."})
    slope: float = field(default=2.0, metadata={"help": "Slope of the entropy boost sigmoid.", "ge": 0})
    max_boost: float = field(default=0.5, metadata={"help": "Maximum entropy boost in nats.", "ge": 0})
    min_entropy: float = field(default=0.03, metadata={"help": "Tokens whose teacher entropy is at most this get "
                                                               "τ_min.", "ge": 0})
    entropy_topk: int = field(default=512, metadata={"help": "Top-k teacher logits for the entropy estimate (k ≥ V: "
                                                             "exact).", "ge": 1})
    bisect_steps: int = field(default=20, metadata={"help": "Bisection steps for τ_t.", "ge": 1})
    sync_every: int = field(default=5, metadata={"help": "Optimizer steps between teacher syncs.", "ge": 1})
    mix: float = field(default=0.99, metadata={"help": "Sync θ_T ← (1 − mix)·θ_T + mix·θ.", "ge": 0, "le": 1})
    teacher: str = field(default="lagged_copy", metadata={"help": "lagged_copy (a synced copy of the policy) or "
                                                                  "live_detached (the current policy, no copy).",
                                                          "choices": ("lagged_copy", "live_detached")})


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    log_p = torch.log_softmax(logits, -1)
    return -(log_p.exp() * log_p).sum(-1)


def curio_temperature(logits: torch.Tensor, args: CurioArgs) -> torch.Tensor:
    """Per-token teacher temperature τ_t (N,) of CurioSFT (``compute_tau_from_logits``): H0 = entropy of the top-k
    logits at τ = 1, target H* = H0 + max_boost·σ(slope·(H0 − pivot)), τ ∈ [τ_min, τ_max] by bisection so that the
    top-k entropy at τ equals H* (clamped at the ends), and τ_min where H0 ≤ min_entropy."""
    logits = logits.detach().float()
    top = logits.topk(min(args.entropy_topk, logits.shape[-1]), dim=-1).values
    h0 = _entropy(top)
    target = h0 + args.max_boost * torch.sigmoid(args.slope * (h0 - args.pivot))
    low = torch.full_like(h0, args.tau_min)
    high = torch.full_like(h0, args.tau_max)
    for _ in range(args.bisect_steps):
        mid = 0.5 * (low + high)
        below = _entropy(top / mid.unsqueeze(-1)) < target
        low = torch.where(below, mid, low)
        high = torch.where(below, high, mid)
    tau = 0.5 * (low + high)
    return torch.where(h0 <= args.min_entropy, torch.full_like(tau, args.tau_min), tau)


def curio_teacher_token_fn(args: CurioArgs) -> TokenFn:
    """Teacher-side token function: log q_t = log_softmax(z_t/τ_t)[y_t] with CurioSFT's per-token τ_t."""

    def fn(log_probs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
           ) -> dict[str, torch.Tensor]:
        tau = curio_temperature(log_probs, args)
        heated = torch.log_softmax(log_probs.float() / tau.unsqueeze(-1), dim=-1)
        return {"curio_logq": heated.gather(-1, targets.unsqueeze(-1)).squeeze(-1), "curio_tau": tau}

    return fn


@register_loss("curio_sft", requires=("logp", "teacher_logp"), args=CurioArgs)
def curio_sft_loss(batch: TokenBatch, args: CurioArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """CurioSFT (Wang et al., "Entropy-Preserving SFT via Adaptive Self-Distillation", arXiv 2602.02244, ACL 2026):

        ℓ_t = −log π_θ(y_t) + α·½·(log π_θ(y_t) − sg(log q_t))²,

    q_t = the lagged self-teacher's label probability at its per-token temperature τ_t (``teacher_logp``, from the
    self-teacher scorer, see :func:`curio_temperature`). The effective gradient −[1 − α(log π − log q)]·∇log π shrinks
    (and flips) once the student is more confident than its heated teacher, which preserves entropy.
    """
    logp = batch.logp.float()
    gap = logp - batch.teacher_logp.float().to(logp.device).detach()
    per_token = _weights(batch) * (-logp + args.alpha * 0.5 * gap.square())
    metrics = _metrics(batch)
    metrics.update({"curio/gap": masked_mean(gap, batch.loss_mask),
                    "curio/teacher_logq": masked_mean(batch.teacher_logp.float(), batch.loss_mask)})
    return batch.aggregate(per_token), metrics


# ---- PoFT -----------------------------------------------------------------------------------------------------------
@dataclass
class PoftArgs:
    """PoFT arguments (released alignment-handbook-PoFT code: β = 1, γ = 0)."""

    beta: float = field(default=1.0, metadata={"help": "β scaling r_θ − r̄ inside the logistic.", "gt": 0})
    gamma: float = field(default=0.0, metadata={"help": "Margin γ added inside the logistic."})


@register_loss("poft", requires=("logp", "ref_score"), args=PoftArgs)
def poft_loss(batch: TokenBatch, args: PoftArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Preference-oriented SFT (Fan et al., "PoFT", arXiv 2412.12865, AAAI 2025):

        r_θ = (1/T_0) Σ_t log π_θ(y_t)   (length-normalised target log-likelihood, response tokens only)
        L = mean_b [ −log σ(β·(r_θ − r̄) + γ) ],

    r̄ = the mean length-normalised log-likelihood of the target under M aligned LLMs, computed offline into
    ``meta.ref_score`` (:func:`mmsft.data.transforms_poft.add_reference_scores`). A sequence-level objective: the mean
    runs over the step's sequences with a supervised token (``loss_agg_mode`` does not apply); the gradient is the CE
    gradient scaled by σ(r̄ − r_θ)·β, a soft data filter.
    """
    mask = batch.loss_mask.to(torch.float32)
    lengths = mask.sum(-1)
    r_theta = (batch.logp.float() * mask).sum(-1) / lengths.clamp(min=1.0)
    valid = lengths > 0  # rows without supervised tokens take no part (their ref_score is never read)
    ref = torch.where(valid, batch.ref_score.float().to(r_theta.device), torch.zeros_like(r_theta))
    margin = args.beta * (r_theta - ref) + args.gamma
    per_seq = torch.where(valid, -F.logsigmoid(margin), torch.zeros_like(margin))
    norm = batch.normalizer or StepNormalizer.from_mask(batch.loss_mask)
    loss = per_seq.sum() / max(norm.num_seqs, 1.0) * norm.world_size
    metrics = _metrics(batch)
    if bool(valid.any()):
        metrics.update({"poft/r_theta": float(r_theta[valid].detach().mean()),
                        "poft/weight": float(torch.sigmoid(-margin[valid].detach()).mean())})
    return loss, metrics


# ---- masked fine-tuning ---------------------------------------------------------------------------------------------
@register_loss("masked_ft", requires=("logp",), args=MaskedReconstructionArgs,
               sample_transform=masked_reconstruction_transform)
def masked_ft_loss(batch: TokenBatch, args: MaskedReconstructionArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked (diffusion-inspired) fine-tuning (Pan et al., arXiv 2510.09885): plain CE, ℓ_t = −w_t·log π(y_t), on
    samples the SFT producer rewrites with :func:`mmsft.data.transforms.masked_reconstruction` (the prompt carries a
    copy of the target with r ~ U(0.05, 0.95) of its tokens masked, redrawn every epoch; the target is the full
    original)."""
    return sft_loss(batch, None)



# ---- SoFT -----------------------------------------------------------------------------------------------------------
@dataclass
class SoftArgs:
    """SoFT arguments (Sorted LLaMA: exits every 4 layers from 12 of LLaMA-2-13B's 40)."""

    exits: str = field(default="", metadata={"help": "Sub-model depths n (layers 1..L), comma-separated (e.g. "
                                                     "'12,16,20'); empty: every ⌈L/10⌉ layers from ⌈0.3·L⌉ to L."})


def _soft_exits(args: SoftArgs) -> list[int] | str:
    text = str(args.exits).strip().strip("[]()")
    parts = [p for p in text.replace(",", " ").split() if p]
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"objective.args.exits must be comma-separated layer numbers, got {args.exits!r}")
    return [int(p) for p in parts] or "auto"


@register_loss("soft", requires=("logp",), args=SoftArgs, policy_exits=_soft_exits)
def soft_loss(batch: TokenBatch, args: SoftArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """SoFT / Sorted LLaMA (Kavehzadeh et al., "Sorted LLaMA: Unlocking the Potential of Intermediate Layers of Large
    Language Models for Dynamic Inference", arXiv 2309.08968, Eq. 1):

        L = (1/|B|) Σ_{n ∈ B} L_CE(head(norm(h_n)), y),

    every sub-model n = the first n layers + the model's shared final norm + the shared LM head, all from one forward
    pass (``extras["exit_logp"]`` (B, T, |B|), computed by the policy pass), equal weights, the same mask and
    aggregation for every exit."""
    exit_logp = batch.extras["exit_logp"].float()
    weights = _weights(batch)
    weights = weights.unsqueeze(-1) if isinstance(weights, torch.Tensor) else weights
    loss = batch.aggregate(-(weights * exit_logp).mean(-1))
    metrics = _metrics(batch)
    for k in range(exit_logp.shape[-1]):
        metrics[f"soft/nll_exit{k}"] = masked_mean(-exit_logp[..., k], batch.loss_mask)
    return loss, metrics


# ---- IFT ------------------------------------------------------------------------------------------------------------
@dataclass
class IftArgs:
    """IFT arguments (released config ``config/loss/ift.yaml``: λ 0.2, γ 0.95, propagation of the loss, L1, left)."""

    lam: float = field(default=0.2, metadata={"help": "λ of the temporal residual: fused input (1 − λ)·E[y_t] + "
                                                      "λ·E[ĝ_t] at response positions.", "ge": 0, "le": 1})
    gamma: float = field(default=0.95, metadata={"help": "γ of the discounted suffix sum of the loss (0: uniform "
                                                         "weights, i.e. plain CE on the fused inputs).",
                                                 "ge": 0, "le": 1})
    detach_weights: bool = field(default=False, metadata={"help": "Stop the gradient through the propagated weights "
                                                                  "(the released code does not)."})


def _ift_inputs(args: IftArgs, fields: dict) -> dict:
    return {"input_mix": (fields["policy_argmax"], args.lam)}


def discounted_suffix_sum(values: torch.Tensor, gamma: float) -> torch.Tensor:
    """w_t = Σ_{k ≥ t} γ^{k−t}·values_k along the last dimension (a reverse scan, stable for any length)."""
    out = torch.zeros_like(values)
    running = torch.zeros_like(values[..., 0])
    for t in range(values.shape[-1] - 1, -1, -1):
        running = values[..., t] + gamma * running
        out[..., t] = running
    return out


@register_loss("ift", requires=("logp", "policy_argmax"), args=IftArgs, policy_inputs=_ift_inputs)
def ift_loss(batch: TokenBatch, args: IftArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Intuitive Fine-Tuning (Hua et al., "Intuitive Fine-Tuning: Towards Simplifying Alignment into a Single
    Process", arXiv 2405.11870, ACL 2025). The producer takes the live policy's greedy guess ĝ_t of every response
    token from the gold prefix (``policy_argmax``); the policy pass runs on fused inputs (1 − λ)·E[y_t] + λ·sg(E)[ĝ_t]
    at response positions, giving log π'_t. Relation propagation (released code: loss, L1, left):

        c_t = −log π'_t / L_b,   w_t = Σ_{k≥t} γ^{k−t} c_k,   w ← w·L_b / Σ_t w_t,
        L = mean_b [ Σ_t w_t·(−log π'_t) / L_b ],

    so early tokens that derail the rest weigh more; γ = 0 gives w = 1 (and λ = 0 plain SFT). A sequence-level mean
    over the step's sequences with a supervised token (``loss_agg_mode`` does not apply).
    """
    mask = batch.loss_mask.to(torch.float32)
    nll = -batch.logp.float() * mask
    lengths = mask.sum(-1)
    if args.gamma == 0:
        weights = mask
    else:
        weights = discounted_suffix_sum(nll / lengths.clamp(min=1.0).unsqueeze(-1), args.gamma) * mask
        total = weights.sum(-1, keepdim=True)
        weights = torch.where(total > 0, weights * lengths.unsqueeze(-1) / total.clamp(min=1e-12), mask)
        if args.detach_weights:
            weights = weights.detach()
    per_seq = (weights * nll).sum(-1) / lengths.clamp(min=1.0)
    norm = batch.normalizer or StepNormalizer.from_mask(batch.loss_mask)
    loss = per_seq.sum() / max(norm.num_seqs, 1.0) * norm.world_size
    metrics = _metrics(batch)
    metrics["ift/weight_max"] = float((weights.detach() * mask).max()) if bool(mask.any()) else 0.0
    return loss, metrics
