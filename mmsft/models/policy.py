"""A trainable policy: any Hugging Face causal LM or image-text-to-text model, scored token by token.

:class:`Policy` is an ``nn.Module`` whose ``forward`` runs the backbone and returns response log-probs via
:func:`head_logprobs`. Wrapping the whole computation in one module lets ``accelerate`` (DDP/FSDP) wrap it, so the
gradient sync hooks fire although the LM head runs in chunks outside the HF ``forward``.
"""

from __future__ import annotations

from typing import Any, Sequence

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
                token_fn: TokenFn | None = None, exit_layers: Sequence[int] | str | None = None,
                input_mix: tuple[torch.Tensor, float] | None = None, hidden_fn: Any = None) -> LogProbs:
        """``exit_layers`` (layer numbers 1..L, or ``"auto"``): also return ``extra["exit_logp"]`` (B, T, E), the
        log-probs of every sub-model made of the first n layers + the shared final norm + the shared LM head
        (SoFT / Sorted LLaMA, arXiv 2309.08968), from the same forward pass. ``input_mix = (ids, λ)``: where
        ``ids >= 0`` the input embedding becomes (1 − λ)·E[input_id] + λ·sg(E)[id] (IFT's temporal residual,
        arXiv 2405.11870; sg(E) is the current table detached, i.e. a copy re-synced every step); other positions,
        images and videos included, are untouched. ``hidden_fn(policy, model_inputs, loss_mask, hidden_states)``: run
        on the backbone's hidden states of this pass; its dict is merged into ``extra`` (LfU's consistency term,
        :mod:`mmsft.objectives.lfu`)."""
        backbone, head = backbone_and_head(self.model)
        if input_mix is not None:
            inputs = mixed_input_embeddings(backbone, inputs, *input_mix)
        model_inputs = {k: v for k, v in inputs.items() if k != "_input_ids"}
        outputs = backbone(**model_inputs, use_cache=False, return_dict=True, output_hidden_states=bool(exit_layers) or hidden_fn is not None)
        hidden = outputs.last_hidden_state
        input_ids = inputs["input_ids"] if "input_ids" in inputs else inputs["_input_ids"]
        out = head_logprobs(hidden, input_ids, loss_mask, head, chunk_size=self.chunk_size,
                            temperature=temperature, softcap=self._softcap, vocab_subset=vocab_subset,
                            with_entropy=with_entropy, with_dist=with_dist, token_fn=token_fn)
        if exit_layers:
            layers = resolve_exits(exit_layers, len(outputs.hidden_states) - 1)
            norm = final_norm(backbone)
            exits = [head_logprobs(hidden if n == len(outputs.hidden_states) - 1 else norm(outputs.hidden_states[n]),
                                   input_ids, loss_mask, head, chunk_size=self.chunk_size,
                                   temperature=temperature, softcap=self._softcap, vocab_subset=vocab_subset).logp
                     for n in layers]
            out.extra = {**(out.extra or {}), "exit_logp": torch.stack(exits, dim=-1)}
        if hidden_fn is not None:
            out.extra = {**(out.extra or {}), **hidden_fn(self, model_inputs, loss_mask, outputs.hidden_states)}
        return out


def mixed_input_embeddings(backbone: nn.Module, inputs: dict[str, Any], ids: torch.Tensor, weight: float
                           ) -> dict[str, Any]:
    """Model inputs with ``inputs_embeds`` = (1 − w)·E[input_ids] + w·sg(E)[ids] where ``ids >= 0`` (else E[input_ids]).
    Vision-language backbones also keep ``input_ids`` (they locate image placeholders with them); text backbones take
    exactly one of the two, so the ids move to ``_input_ids`` for the log-prob targets."""
    table = backbone.get_input_embeddings()
    input_ids = inputs["input_ids"]
    live = table(input_ids)
    fuse = (ids >= 0).to(input_ids.device)
    other = table.weight.detach()[ids.clamp(min=0).to(input_ids.device)].to(live.dtype)
    mixed = torch.where(fuse.unsqueeze(-1), (1.0 - weight) * live + weight * other, live)
    out = {k: v for k, v in inputs.items() if k != "input_ids"}
    out["inputs_embeds"] = mixed
    if hasattr(backbone, "get_placeholder_mask"):
        out["input_ids"] = input_ids
    else:
        out["_input_ids"] = input_ids
    return out


def resolve_exits(spec: Sequence[int] | str, num_layers: int) -> list[int]:
    """Exit layers: explicit numbers in 1..L, or ``"auto"`` — every ⌈L/10⌉ layers from ⌈0.3·L⌉ to L (for L = 40
    roughly the paper's {12, 16, ..., 40}), always including L."""
    if isinstance(spec, str):
        if spec != "auto":
            raise ValueError(f"exit_layers must be a list of layer numbers or 'auto', got {spec!r}")
        step, first = max(1, -(-num_layers // 10)), max(1, -(-3 * num_layers // 10))
        layers = list(range(first, num_layers + 1, step))
        return layers if layers[-1] == num_layers else [*layers, num_layers]
    bad = [n for n in spec if not 1 <= int(n) <= num_layers]
    if bad:
        raise ValueError(f"exit layers {bad} are outside 1..{num_layers} (the model has {num_layers} layers)")
    return sorted({int(n) for n in spec})


def final_norm(backbone: nn.Module) -> nn.Module:
    """The decoder's final norm (shared by every SoFT exit)."""
    for owner in (backbone, getattr(backbone, "language_model", None)):
        for name in ("norm", "final_layernorm", "ln_f"):
            module = getattr(owner, name, None) if owner is not None else None
            if isinstance(module, nn.Module):
                return module
    raise TypeError(f"{type(backbone).__name__} has no final norm (norm / final_layernorm / ln_f) to share across "
                    "sub-model exits")
