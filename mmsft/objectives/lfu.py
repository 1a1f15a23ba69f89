"""LfU — Learning from the Undesirable (Nam, Kim, Jeong, "Learning from the Undesirable: Robust Adaptation of
Language Models without Forgetting", arXiv 2511.13052, AAAI 2026; spec ../shared/reference/objectives_sft.md §10).

    L = L_SFT(θ) + λ·L_cons,   L_cons = mean_{t ∈ labels} (1/K)·Σ_l mean_d (h'_{l,t}(θ + δ) − sg(h_{l,t}(θ)))²,
    δ = α·∇_θ L_SFT(θ; x_aux) / ‖∇_θ L_SFT(θ; x_aux)‖₂   (one normalised gradient-*ascent* step, x_aux a second batch)

The consistency term asks the hidden states of every layer (embedding output + every block, as the released code's
``output_hidden_states``) to stay where they are when the parameters move in the direction that would most *increase*
the SFT loss on other data — a SAM-style flatness constraint on representations; the gradient of the MSE is taken at
the perturbed point θ + δ and applied to θ.

How it fits the core, step by step for each micro-batch x:

1. The SFT producer attaches ``aux_batch``: a micro-batch of the same size drawn at random from the training set
   with a stream seeded by (seed, step, rank, micro-batch) — the released code's "second random batch"; identical on
   resume.
2. The policy pass (``policy_inputs`` → :class:`LfuConsistency` as the policy's ``hidden_fn``) runs the usual forward
   on x with hidden states (CE and the targets sg(h)), then the CE on x_aux and its gradient with
   ``torch.autograd.grad`` (no ``.grad`` is touched, so accumulated gradients of earlier micro-batches are safe),
   δ over all trainable parameters with one global norm, and a second backbone forward through
   ``torch.func.functional_call`` with parameters p + sg(δ) (nothing is modified in place; the gradient flows to p).
3. The loss adds λ·(per-token MSE) aggregated with the same step-wide normaliser as the CE, so it is invariant to
   gradient accumulation.

Cost: three forwards and two backwards per micro-batch (≈ 2–2.5× SFT). Defaults: α = 0.1, λ = 5 (the released LoRA-mode
scripts, ``beta``; their consistency term is divided by the 4 grad-accumulation steps but the CE is not, so the
effective weight there is λ/4 — set ``lam`` accordingly to reproduce it), all layers. The RepS mode (per-layer
steering vectors instead of parameters, λ = 0.1) is not provided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.policy_losses import masked_mean
from mmsft.objectives.registry import register_loss
from mmsft.objectives.sft import sft_loss


@dataclass
class LfuArgs:
    """LfU arguments (released LoRA-mode scripts of github.com/yunpal/LfU: α 0.1, λ 5, every layer)."""

    lam: float = field(default=5.0, metadata={"help": "λ of the hidden-state consistency term (released LoRA mode: 5; "
                                                      "effective λ/grad_accum there).", "ge": 0})
    alpha: float = field(default=0.1, metadata={"help": "Norm α of the gradient-ascent parameter step δ.", "ge": 0})
    layers: str = field(default="", metadata={"help": "Hidden-state indices compared, comma-separated (0 = embedding "
                                                      "output, L = last block); empty: all of them."})


class LfuConsistency:
    """The policy pass's ``hidden_fn`` for one micro-batch: returns ``{"lfu_mse": (B, T), "lfu_delta_norm": ()}``
    (per supervised token: mean over the chosen layers and the hidden size of (h'(θ + δ) − sg(h(θ)))²)."""

    def __init__(self, aux: Any, args: LfuArgs) -> None:
        self.aux, self.args = aux, args

    def ascent_direction(self, policy: Any) -> dict[int, torch.Tensor]:
        """δ = α·g/‖g‖₂ with g = ∇ CE(x_aux) over every trainable parameter (keyed by ``id(param)``, detached)."""
        params = [p for p in policy.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("LfU needs trainable parameters to perturb")
        mask = self.aux.loss_mask.to(torch.float32)
        with torch.enable_grad():
            logp = policy(self.aux.inputs, self.aux.loss_mask).logp.float()
            ce = -(logp * mask).sum() / mask.sum().clamp(min=1.0)
            grads = torch.autograd.grad(ce, params, allow_unused=True)
        squares = [g.detach().float().pow(2).sum() for g in grads if g is not None]
        norm = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
        if not math.isfinite(norm):
            raise ValueError(f"LfU: the ascent gradient on the auxiliary batch is not finite (norm {norm}; samples "
                             f"{self.aux.sample_ids[:8]})")
        scale = self.args.alpha / norm if norm > 0 else 0.0
        return {id(p): (g.detach() * scale).to(p.dtype) for p, g in zip(params, grads) if g is not None}

    def __call__(self, policy: Any, model_inputs: dict[str, Any], loss_mask: torch.Tensor,
                 hidden_states: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        from mmsft.models.policy import backbone_and_head

        backbone, _ = backbone_and_head(policy.model)
        delta = self.ascent_direction(policy)
        perturbed = {name: p + delta[id(p)] for name, p in backbone.named_parameters() if id(p) in delta}
        kwargs = {**model_inputs, "use_cache": False, "return_dict": True, "output_hidden_states": True}
        moved = torch.func.functional_call(backbone, perturbed, args=(), kwargs=kwargs, strict=False).hidden_states
        layers = select_layers(self.args.layers, len(hidden_states))
        mask = loss_mask.to(torch.float32)
        per_token = torch.stack([(moved[i].float() - hidden_states[i].detach().float()).pow(2).mean(-1)
                                 for i in layers]).mean(0)
        norm = torch.stack([d.float().pow(2).sum() for d in delta.values()]).sum().sqrt() if delta else torch.zeros(())
        return {"lfu_mse": per_token * mask, "lfu_delta_norm": norm.detach()}


def select_layers(layers: str | Sequence[int], count: int) -> list[int]:
    """Indices into the ``count`` hidden states (0 = embedding output), as a comma-separated string or a sequence;
    empty = all; anything else (out of range, not an integer) is refused naming the key."""
    if isinstance(layers, str):
        parts = [p.strip() for p in layers.strip().strip("[]()").split(",") if p.strip()]
        bad_text = [p for p in parts if not p.lstrip("-").isdigit()]
        if bad_text:
            raise ValueError(f"objective.args.layers: {bad_text} are not layer indices (expected e.g. '0,2,4')")
        layers = [int(p) for p in parts]
    if not layers:
        return list(range(count))
    bad = [i for i in layers if not 0 <= int(i) < count]
    if bad:
        raise ValueError(f"objective.args.layers {bad} are outside 0..{count - 1} (the model has {count} hidden "
                         "states: the embedding output and one per block)")
    return sorted({int(i) for i in layers})


def _lfu_inputs(args: LfuArgs, fields: dict) -> dict:
    aux = fields.get("aux_batch")
    if aux is None:
        raise ValueError("objective lfu needs the producer's auxiliary batch (fields['aux_batch']); use stage sft")
    return {"hidden_fn": LfuConsistency(aux, args)}


@register_loss("lfu", requires=("logp",), args=LfuArgs, policy_inputs=_lfu_inputs, aux_batch=True)
def lfu_loss(batch: TokenBatch, args: LfuArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """LfU (arXiv 2511.13052): SFT cross-entropy + λ·hidden-state consistency under a normalised gradient-ascent
    parameter perturbation (module docstring). Reads ``extras["lfu_mse"]`` (B, T) from the policy pass; aggregated
    with ``objective.loss_agg_mode`` like the CE."""
    mse = batch.extras.get("lfu_mse")
    if mse is None:
        raise ValueError("objective lfu needs extras['lfu_mse'] from the policy pass (its hidden_fn); it runs in the "
                         "trainer's sft stage")
    ce, metrics = sft_loss(batch)
    loss = ce + args.lam * batch.aggregate(mse.float())
    metrics = dict(metrics)
    metrics["lfu/consistency_mse"] = masked_mean(mse.detach().float(), batch.loss_mask)
    delta_norm = batch.extras.get("lfu_delta_norm")
    if delta_norm is not None:
        metrics["lfu/delta_norm"] = float(delta_norm)
    return loss, metrics
