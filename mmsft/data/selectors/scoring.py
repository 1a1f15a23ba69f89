"""One no-grad scoring pass: per sample, the target tokens' log-probs, the predictive entropies and (on request) the
raw logits at the supervised positions. The LM head runs only on supervised positions."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from mmsft.data.selectors.base import TokenStats


@torch.no_grad()
def token_stats(model: Any, adapter: Any, encoded: Sequence[Any], device: Any = "cpu", batch_size: int = 8,
                with_logits: bool = False, vocab_subset: torch.Tensor | None = None) -> list[TokenStats]:
    """Statistics of each ``Encoded`` sample under ``model`` in eval mode (its training mode is restored)."""
    from mmsft.models.policy import backbone_and_head, logit_softcap

    backbone, head = backbone_and_head(model)
    softcap = logit_softcap(model)
    was_training = model.training
    model.eval()
    out: list[TokenStats] = []
    try:
        for start in range(0, len(encoded), batch_size):
            chunk = list(encoded[start:start + batch_size])
            batch = adapter.collate(chunk).to(device)
            inputs = {k: v for k, v in batch.inputs.items() if k != "_input_ids"}
            ids = batch.inputs["input_ids"] if "input_ids" in batch.inputs else batch.inputs["_input_ids"]
            hidden = backbone(**inputs, use_cache=False, return_dict=True).last_hidden_state
            for row in range(len(chunk)):
                cols = batch.loss_mask[row].nonzero(as_tuple=True)[0]
                logits = head(hidden[row, cols - 1]).float()
                if softcap:
                    logits = torch.tanh(logits / softcap) * softcap
                targets = ids[row, cols]
                if vocab_subset is not None:
                    lookup = torch.full((int(vocab_subset.max()) + 1,), 0, dtype=torch.long, device=logits.device)
                    lookup[vocab_subset] = torch.arange(len(vocab_subset), device=logits.device)
                    logits, targets = logits.index_select(-1, vocab_subset), lookup[targets.clamp(max=len(lookup) - 1)]
                log_probs = torch.log_softmax(logits, -1)
                out.append(TokenStats(logp=log_probs.gather(-1, targets[:, None])[:, 0].cpu(),
                                      entropy=-(log_probs.exp() * log_probs).sum(-1).cpu(),
                                      logits=logits.cpu() if with_logits else None))
    finally:
        model.train(was_training)
    return out
