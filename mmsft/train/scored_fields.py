"""Per-token fields that frozen scorers compute on a micro-batch (reference / teacher log-probs, and top-k supports
for distribution-matching losses), shared by every producer: the SFT producer (ASFT, CurioSFT, supervised top-k KD),
the mix producer's expert rows and the on-policy step builder (GKD, on-policy top-k KD).

A *support* is K token ids per supervised position with the scorers' log-probs there: the top-``k`` ids of the
teacher (when the loss reads ``teacher_support_logp``) or of the reference, and every other needed scorer evaluated
at the same ids; the trainer's policy pass gathers the policy's log-probs at them (``logp_support``), so a KL over the
support (plus one tail bucket) never materialises B×T×V. ``k`` is the loss's ``topk`` argument (0: all ids).
"""

from __future__ import annotations

from typing import Any

import torch

from mmsft.models.adapters import ModelBatch

SUPPORT_FIELDS = ("support_ids", "ref_support_logp", "teacher_support_logp")
SCORED_FIELDS = ("ref_logp", "teacher_logp", *SUPPORT_FIELDS)


def support_k(cfg: Any) -> int:
    """The configured loss's ``topk`` argument (0 when it has none: every id of the vocabulary)."""
    from mmsft.config import build_args
    from mmsft.objectives import get_loss

    args = build_args(get_loss(cfg.objective.name), cfg.objective.args, "objective.args")
    return int(getattr(args, "topk", 0))


def _need(scorer: Any, name: str) -> Any:
    if scorer is None:
        raise ValueError(f"the objective needs {name} but no scorer was set up for it")
    return scorer


def attach_scored_fields(batch: ModelBatch, scorers: Any, needed: set[str], k: int,
                         names: tuple[str, ...] = SCORED_FIELDS) -> None:
    """Fill ``batch.fields`` with the scored fields among ``names`` that the objective needs and the batch lacks."""
    wanted = [n for n in names if n in needed and n not in batch.fields]
    if not wanted:
        return
    for name, scorer in (("ref_logp", "ref"), ("teacher_logp", "teacher")):
        if name in wanted:
            batch.fields[name] = _need(getattr(scorers, scorer), name)(batch).detach().float().cpu()
    if not {"support_ids", "ref_support_logp", "teacher_support_logp"} & set(wanted):
        return
    sources = [(n, s) for n, s in (("teacher_support_logp", "teacher"), ("ref_support_logp", "ref")) if n in needed]
    if not sources:
        raise ValueError("support_ids are needed but no scorer's support log-probs are (teacher_support_logp or "
                         "ref_support_logp)")
    ids = batch.fields.get("support_ids")
    for name, scorer_name in sources:
        scorer = _need(getattr(scorers, scorer_name), name)
        if getattr(scorer, "support", None) is None:
            raise ValueError(f"the {scorer_name} scorer has no support(batch, k, ids) method, which {name} needs")
        got_ids, logp = scorer.support(batch, k, ids)
        ids = got_ids.long().cpu() if ids is None else ids
        batch.fields[name] = logp.float().cpu()
    batch.fields["support_ids"] = ids
    mask = batch.loss_mask.cpu().unsqueeze(-1)
    batch.fields["support_ids"] = torch.where(mask, batch.fields["support_ids"], torch.zeros_like(ids))


@torch.no_grad()
def policy_argmax(policy: Any, batch: ModelBatch, device: Any, vocab_subset: torch.Tensor | None) -> torch.Tensor:
    """(B, T) the current policy's greedy guess of every supervised token from the gold prefix (IFT's ĝ_t; −1
    elsewhere), from one no-grad pass of the live policy; ids are vocabulary ids even under a restricted vocabulary."""

    def fn(log_probs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
           ) -> dict[str, torch.Tensor]:
        return {"argmax": log_probs.argmax(-1)}

    moved = batch.to(device)
    out = policy(moved.inputs, moved.loss_mask, vocab_subset=vocab_subset, token_fn=fn)
    ids = out.extra["argmax"]
    if vocab_subset is not None:
        ids = vocab_subset.to(ids.device)[ids]
    return torch.where(moved.loss_mask, ids, torch.full_like(ids, -1)).cpu()
