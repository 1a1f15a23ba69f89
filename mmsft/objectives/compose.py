"""An objective as a composition: one registered loss with its own arguments, plus the regularisers every loss can
carry — a KL term to the reference policy (as a loss; KL-in-reward is applied by the advantage side) and an entropy
bonus — all aggregated by the same :func:`agg_loss` over the whole optimizer step (Trinity-RFT's ``AlgorithmType``
composition, see ../shared/reference/anchors_frameworks.md §2b).

The composition declares every :class:`TokenBatch` field it reads (``requires``), so the trainer builds only the
scorers that are needed and checks at start-up that a producer provides each field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.policy_losses import masked_mean
from mmsft.objectives.registry import args_type, get_kl, get_loss


@dataclass
class KLTerm:
    coef: float = 0.0
    estimator: str = "k3"
    placement: str = "loss"  # loss | reward

    @property
    def as_loss(self) -> bool:
        return self.coef > 0 and self.placement == "loss"

    @property
    def in_reward(self) -> bool:
        return self.coef > 0 and self.placement == "reward"


class Objective:
    """``objective(batch) -> (loss, metrics)``: loss(args) + β·KL(π‖π_ref) − c_H·H(π)."""

    def __init__(self, loss: str, args: Any = None, agg_mode: str = "token-mean", kl: KLTerm | None = None,
                 entropy_coef: float = 0.0) -> None:
        self.entry = get_loss(loss)
        self.args = args if args is not None else args_type(self.entry)()
        self.agg_mode = agg_mode
        self.kl = kl or KLTerm()
        if self.kl.coef > 0:
            get_kl(self.kl.estimator)  # fail at construction on an unknown estimator
        self.entropy_coef = entropy_coef

    @property
    def requires(self) -> frozenset[str]:
        fields = set(self.entry.requires)
        if self.kl.as_loss:
            fields.add("ref_logp")
        if self.entropy_coef > 0:
            fields.add("entropy")
        return frozenset(fields)

    def token_fn(self, fields: dict[str, torch.Tensor]) -> Callable[..., dict[str, torch.Tensor]] | None:
        """The function the policy pass runs inside each LM-head chunk for this micro-batch (``fields`` are its
        producer fields), or None: gathers ``logp_support`` at ``support_ids`` when required, plus the loss's own
        ``token_fn`` (registry meta)."""
        parts = []
        if "logp_support" in self.requires:
            if "support_ids" not in fields:
                raise ValueError(f"loss {self.entry.name!r} needs logp_support but the producer gave no support_ids")
            parts.append(support_gather(fields["support_ids"]))
        factory = self.entry.meta.get("token_fn")
        if factory is not None:
            parts.append(factory(self.args))
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]

        def combined(log_probs, targets, rows, cols):
            out: dict[str, torch.Tensor] = {}
            for part in parts:
                out.update(part(log_probs, targets, rows, cols))
            return out

        return combined

    def policy_kwargs(self, fields: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Extra keyword arguments of the policy pass for this micro-batch: ``token_fn`` (see :meth:`token_fn`),
        ``exit_layers`` when the loss declares a factory ``policy_exits(args)`` (SoFT's sub-model exits), and what a
        loss's ``policy_inputs(args, fields)`` returns (IFT's ``input_mix``)."""
        kwargs: dict[str, Any] = {"token_fn": self.token_fn(fields)}
        exits = self.entry.meta.get("policy_exits")
        if exits is not None:
            kwargs["exit_layers"] = exits(self.args)
        inputs = self.entry.meta.get("policy_inputs")
        if inputs is not None:  # e.g. IFT's fused input embeddings from the producer's predictions
            kwargs.update(inputs(self.args, fields))
        return kwargs

    def __call__(self, batch: TokenBatch) -> tuple[torch.Tensor, dict[str, float]]:
        batch.agg_mode = self.agg_mode
        loss, metrics = self.entry.fn(batch, self.args)
        metrics = dict(metrics)
        if self.kl.as_loss:
            batch.require("ref_logp")
            kl = get_kl(self.kl.estimator).fn(batch.logp, batch.ref_logp)
            loss = loss + self.kl.coef * batch.aggregate(kl)
            metrics["kl"] = masked_mean(kl, batch.loss_mask)
        if self.entropy_coef > 0:
            batch.require("entropy")
            loss = loss - self.entropy_coef * batch.aggregate(batch.entropy)
        if batch.entropy is not None:
            metrics["entropy"] = masked_mean(batch.entropy, batch.loss_mask)
        return loss, metrics


def support_gather(support_ids: torch.Tensor) -> Callable[..., dict[str, torch.Tensor]]:
    """A token function returning the policy's (differentiable) log-probs at ``support_ids[row, col]`` (B, T, K)."""

    def gather(log_probs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
               ) -> dict[str, torch.Tensor]:
        ids = support_ids[rows, cols].to(log_probs.device)
        return {"logp_support": log_probs.gather(-1, ids)}

    return gather
