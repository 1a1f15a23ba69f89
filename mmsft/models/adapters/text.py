"""Adapter for text-only causal LMs (Qwen2, Llama and any tokenizer with a chat template)."""

from __future__ import annotations

import torch

from mmsft.data.schema import DataError, Sample
from mmsft.models.adapters.base import Encoded, ModalityAdapter, ModelBatch, response_text


class TextAdapter(ModalityAdapter):
    family = "text"

    def _messages(self, sample: Sample, with_target: bool) -> list[dict]:
        messages = sample.messages if with_target else sample.prompt_messages
        out = []
        for message in messages:
            if any(p.type != "text" for p in message.parts):
                raise DataError(f"{sample.where()}: the text family cannot take image/video parts; "
                                "use a vision-language model (qwen2-vl, qwen2.5-vl)")
            out.append({"role": message.role, "content": message.text})
        return out

    def _render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        text = "\n".join(m["content"] for m in messages)
        return text + "\n" if add_generation_prompt else text + (self.tokenizer.eos_token or "")

    def _chat_text(self, sample: Sample) -> str:
        return self._render(self._messages(sample, True), add_generation_prompt=True)

    def _segment_tokens(self, sample: Sample, text: str) -> tuple[list[int], dict[str, torch.Tensor]]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"], {}

    def encode(self, sample: Sample, with_target: bool = True) -> Encoded:
        prompt_text = self._render(self._messages(sample, False), add_generation_prompt=True)
        prompt_ids = self.tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        if not with_target:
            return self._finish(sample, prompt_ids, [], {})
        if sample.target is None:
            raise DataError(f"{sample.where()}: expected a final assistant message as the training target")
        full_text = self._render(self._messages(sample, True), add_generation_prompt=False)
        eos = self.tokenizer.eos_token or ""
        if not self.tokenizer.chat_template:
            full_text = prompt_text + sample.target.text + eos
        response = response_text(full_text, prompt_text, eos, sample.where())
        response_ids = self.tokenizer(response, add_special_tokens=False)["input_ids"]
        return self._finish(sample, prompt_ids, response_ids, {})

    def pack(self, items: list[Encoded]) -> ModelBatch:
        """All samples in one row without padding; ``position_ids`` restart per sample, so the attention is
        block-diagonal (transformers detects packed sequences from the position ids). The sample boundaries also go
        in as ``cu_seq_lens_q`` / ``cu_seq_lens_k``, which :mod:`mmsft.models.varlen_attention` uses to attend per
        sample instead of over the whole row."""
        from mmsft.models.varlen_attention import cumulative_lengths

        ids = torch.cat([e.input_ids for e in items]).unsqueeze(0)
        positions = torch.cat([torch.arange(len(e)) for e in items]).unsqueeze(0)
        loss_mask = torch.cat([e.loss_mask for e in items]).unsqueeze(0)
        bounds = cumulative_lengths([len(e) for e in items])
        return ModelBatch({"input_ids": ids, "position_ids": positions, "cu_seq_lens_q": bounds,
                           "cu_seq_lens_k": bounds}, loss_mask, [e.sample_id for e in items], "packed")
