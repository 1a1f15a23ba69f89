"""A trainable policy: any Hugging Face causal LM or image-text-to-text model, scored token by token.

:class:`Policy` is an ``nn.Module`` whose ``forward`` runs the backbone and returns response log-probs via
:func:`head_logprobs`. Wrapping the whole computation in one module lets ``accelerate`` (DDP/FSDP) wrap it, so the
gradient sync hooks fire although the LM head runs in chunks outside the HF ``forward``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmsft.models.logprobs import LogProbs, TokenFn, head_logprobs


def unwrap_hf_model(model: nn.Module) -> nn.Module:
    """The underlying ``PreTrainedModel`` of a (possibly peft-wrapped) model."""
    if hasattr(model, "get_base_model"):
        return model.get_base_model()
    return model


def backbone_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The HF base model (``model.<base_model_prefix>``) and the output embedding (LM head)."""
    base = unwrap_hf_model(model)
    prefix = getattr(base, "base_model_prefix", "model")
    backbone = getattr(base, prefix, None)
    head = base.get_output_embeddings()
    if backbone is None or head is None:
        raise TypeError(f"{type(base).__name__} has no '{prefix}' backbone or no output embeddings; "
                        "mmsft needs a *ForCausalLM or *ForConditionalGeneration model")
    return backbone, head


def logit_softcap(model: nn.Module) -> float | None:
    config = unwrap_hf_model(model).config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text_config, "final_logit_softcapping", None)


class Policy(nn.Module):
    """Wraps a HF model; ``forward(inputs, loss_mask)`` → :class:`LogProbs` aligned with ``inputs['input_ids']``."""

    def __init__(self, model: nn.Module, chunk_size: int = 1024) -> None:
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size
        self._softcap = logit_softcap(model)

    def forward(self, inputs: dict[str, Any], loss_mask: torch.Tensor, *, with_entropy: bool = False,
                temperature: float = 1.0, vocab_subset: torch.Tensor | None = None, with_dist: bool = False,
                token_fn: TokenFn | None = None) -> LogProbs:
        backbone, head = backbone_and_head(self.model)
        outputs = backbone(**inputs, use_cache=False, return_dict=True)
        hidden = outputs.last_hidden_state
        return head_logprobs(hidden, inputs["input_ids"], loss_mask, head, chunk_size=self.chunk_size,
                             temperature=temperature, softcap=self._softcap, vocab_subset=vocab_subset,
                             with_entropy=with_entropy, with_dist=with_dist, token_fn=token_fn)
