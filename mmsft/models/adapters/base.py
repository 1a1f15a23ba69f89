"""The modality-adapter contract: ``Sample``s in, model inputs + per-token loss mask out, and back.

An adapter is the only place that knows about a model family's processor, chat template, special tokens and
multimodal tensors. Objectives and the trainer only see token tensors (:class:`ModelBatch`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from mmsft.data.media import MediaBudget
from mmsft.data.schema import DataError, Sample

OVERLONG_POLICIES = ("drop", "truncate", "error")
CONTINUATION_MARK = "<<mmsft:continue>>"  # stands for an assistant turn whose sampled token ids the caller holds


class OverlongSample(DataError):
    """A sample longer than ``max_length`` under the ``drop`` policy (the producer counts and skips it)."""


@dataclass
class Encoded:
    """One sample's tokens and its own multimodal tensors (per-sample, so batches can be split and merged)."""

    sample_id: str
    input_ids: torch.Tensor  # (L,)
    loss_mask: torch.Tensor  # (L,) bool, True on supervised tokens
    mm: dict[str, torch.Tensor] = field(default_factory=dict)
    truncated: bool = False
    token_weights: torch.Tensor | None = None  # one weight per supervised token (from the data), or None

    def __len__(self) -> int:
        return int(self.input_ids.numel())


@dataclass
class ModelBatch:
    """Padded model inputs plus the (B, T) loss mask aligned with ``inputs['input_ids']``."""

    inputs: dict[str, torch.Tensor]
    loss_mask: torch.Tensor
    sample_ids: list[str]
    padding_side: str = "right"
    fields: dict[str, torch.Tensor] = field(default_factory=dict)  # extra TokenBatch fields aligned with the rows

    def to(self, device: torch.device | str) -> "ModelBatch":
        return ModelBatch({k: v.to(device) for k, v in self.inputs.items()}, self.loss_mask.to(device),
                          self.sample_ids, self.padding_side, {k: v.to(device) for k, v in self.fields.items()})

    @property
    def num_tokens(self) -> int:
        return int(self.inputs["attention_mask"].sum()) if "attention_mask" in self.inputs else int(self.inputs["input_ids"].numel())


class ModalityAdapter(ABC):
    """Base class: subclasses implement :meth:`encode`, and multimodal ones extend :meth:`_collate_mm`/``_split_mm``."""

    family: str = "base"

    def __init__(self, processor: Any, budget: MediaBudget | None = None, padding_side: str = "right",
                 max_length: int | None = None, overlong: str = "drop") -> None:
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if overlong not in OVERLONG_POLICIES:
            raise ValueError(f"overlong policy must be one of {OVERLONG_POLICIES}, got {overlong!r}")
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.budget = budget or MediaBudget()
        self.padding_side = padding_side
        self.max_length = max_length
        self.overlong = overlong
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else self.tokenizer.eos_token_id
        if self.pad_token_id is None:
            raise ValueError("the tokenizer has neither a pad token nor an eos token to pad with")

    # ---- encoding -------------------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, sample: Sample, with_target: bool = True) -> Encoded:
        """Tokens (and media tensors) of one sample; ``with_target=False`` gives the generation prompt."""

    def _finish(self, sample: Sample, prompt_ids: list[int], response_ids: list[int], mm: dict[str, torch.Tensor],
                supervised: list[bool] | None = None) -> Encoded:
        """Concatenate prompt + response, build the loss mask, apply the overlong policy."""
        supervised = supervised if supervised is not None else [True] * len(response_ids)
        ids, mask, truncated = prompt_ids + response_ids, [False] * len(prompt_ids) + supervised, False
        if self.max_length is not None and len(ids) > self.max_length:
            message = (f"{sample.where()}: {len(ids)} tokens exceed max_length={self.max_length} "
                       f"(prompt {len(prompt_ids)}, response {len(response_ids)})")
            if self.overlong == "error":
                raise DataError(message + "; set data.overlong=drop or truncate, or raise data.max_length")
            if self.overlong == "drop" or len(prompt_ids) >= self.max_length or not response_ids:
                raise OverlongSample(message)
            ids, mask, truncated = ids[: self.max_length], mask[: self.max_length], True
        return Encoded(sample.id, torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.bool), mm, truncated)

    def encode_continuation(self, sample: Sample, closed: bool) -> Encoded:
        """Tokens continuing a conversation after an assistant turn that the caller holds as sampled token ids.

        ``sample.messages`` is ``[user(anything), assistant(CONTINUATION_MARK), new messages...]``; the result is the
        chat-template text after the mark — the end of that assistant turn (dropped when ``closed``: the sampled ids
        already end with the end-of-turn token), the new messages and the generation prompt — tokenised on its own
        with the new messages' media. Nothing in the result is supervised. Model output is never re-tokenised: the
        agent loop concatenates these ids after the exact sampled ids (multi-turn trajectories).
        """
        text = self._chat_text(sample)
        cut = text.find(CONTINUATION_MARK)
        if cut < 0 or sample.messages[1].text != CONTINUATION_MARK:
            raise ValueError(f"{sample.where()}: encode_continuation expects messages [user, assistant("
                             f"{CONTINUATION_MARK!r}), ...]")
        suffix = text[cut + len(CONTINUATION_MARK):]
        end_of_turn = self.tokenizer.eos_token or ""
        if closed and end_of_turn and suffix.startswith(end_of_turn):
            suffix = suffix[len(end_of_turn):]
        ids, mm = self._segment_tokens(sample, suffix)
        return Encoded(sample.id, torch.tensor(ids, dtype=torch.long), torch.zeros(len(ids), dtype=torch.bool), mm)

    def _chat_text(self, sample: Sample) -> str:
        """All of ``sample.messages`` rendered by the chat template, with the generation prompt."""
        raise NotImplementedError(f"the {self.family} family cannot continue conversations (multi-turn rollouts)")

    def _segment_tokens(self, sample: Sample, text: str) -> tuple[list[int], dict[str, torch.Tensor]]:
        """Token ids (and media tensors of ``sample``'s prompt media) of a piece of template text."""
        raise NotImplementedError(f"the {self.family} family cannot continue conversations (multi-turn rollouts)")

    # ---- batching -------------------------------------------------------------------------------------------
    def collate(self, items: list[Encoded], padding_side: str | None = None) -> ModelBatch:
        """Pad a list of encoded samples into one batch (the inverse of :meth:`split`)."""
        if not items:
            raise ValueError("cannot collate an empty list of samples")
        side = padding_side or self.padding_side
        width = max(len(e) for e in items)
        ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(items), width), dtype=torch.long)
        loss_mask = torch.zeros((len(items), width), dtype=torch.bool)
        for row, item in enumerate(items):
            n = len(item)
            cols = slice(width - n, width) if side == "left" else slice(0, n)
            ids[row, cols], attention[row, cols], loss_mask[row, cols] = item.input_ids, 1, item.loss_mask
        inputs = {"input_ids": ids, "attention_mask": attention}
        inputs.update(self._collate_mm(items, inputs))
        return ModelBatch(inputs, loss_mask, [e.sample_id for e in items], side)

    def split(self, batch: ModelBatch) -> list[Encoded]:
        """Per-sample pieces of a batch (padding removed, multimodal tensors sliced)."""
        mm_parts = self._split_mm(batch)
        out = []
        for row, sample_id in enumerate(batch.sample_ids):
            keep = batch.inputs["attention_mask"][row].bool()
            out.append(Encoded(sample_id, batch.inputs["input_ids"][row][keep].clone(), batch.loss_mask[row][keep].clone(),
                               mm_parts[row]))
        return out

    def _collate_mm(self, items: list[Encoded], inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {}

    def _split_mm(self, batch: ModelBatch) -> list[dict[str, torch.Tensor]]:
        return [{} for _ in batch.sample_ids]

    # ---- helpers --------------------------------------------------------------------------------------------
    def pack(self, items: list[Encoded]) -> ModelBatch:
        """Padding-free batch: all samples in one row, ``position_ids`` restarting at each sample (text models)."""
        raise ValueError(f"packing is not supported for the {self.family} family; use padded batches")

    def decode(self, token_ids: list[int] | torch.Tensor, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)

    @property
    def stop_token_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        for token in ("<|im_end|>", "<|endoftext|>"):
            tid = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                ids.add(tid)
        return sorted(i for i in ids if i is not None)

    @property
    def suppressed_token_ids(self) -> list[int]:
        """Tokens generation must never emit (vision placeholders)."""
        return []

    def vocab_subset(self) -> torch.Tensor | None:
        """Restricted vocabulary for log-probs (VLA action bins), or None for the full vocabulary."""
        return None

    def sampling_constraints(self) -> tuple[tuple[int, ...] | None, bool]:
        """``(vocab_subset, allow_stop)`` for generation: the ids sampling is restricted to (None: all) and whether a
        stop token may end a completion (the rollout engine's ``SamplingParams`` fields)."""
        subset = self.vocab_subset()
        return (None, True) if subset is None else (tuple(int(i) for i in subset.tolist()), True)


def response_text(template_full: str, template_prompt: str, eos_token: str, where: str) -> str:
    """The assistant turn as rendered by the chat template, up to and including its end-of-turn token."""
    if not template_full.startswith(template_prompt):
        raise DataError(f"{where}: the chat template does not render the prompt as a prefix of the full conversation; "
                        "cannot locate the response tokens")
    tail = template_full[len(template_prompt):]
    cut = tail.rfind(eos_token)
    return tail[: cut + len(eos_token)] if cut >= 0 else tail
