"""Adapter for OpenVLA-style VLAs: a Qwen-VL backbone whose last vocabulary ids are action bins.

The target is ``sample.actions`` (a chunk of action vectors), tokenised by the model's
:class:`~mmsft.models.action_tokenizer.ActionTokenizer` into bin tokens; the loss mask covers exactly the action span,
and :meth:`vocab_subset` restricts log-probs to the action vocabulary (Kim et al., OpenVLA, arXiv 2406.09246).

The end-of-turn token that closes an SFT target lies outside the action vocabulary and is never supervised. Rollouts
sample only action bins and never a stop token (:meth:`sampling_constraints`): a turn is exactly
``tokens_per_action × chunk`` bin tokens, so every token a rollout puts under the loss mask is inside
:meth:`vocab_subset` and the restricted log-prob head scores it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mmsft.data.schema import DataError, Sample
from mmsft.models.adapters.qwen_vl import QwenVLAdapter


class VLAAdapter(QwenVLAdapter):
    family = "vla"

    def __init__(self, processor: Any, *args: Any, action_tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(processor, *args, **kwargs)
        if action_tokenizer is None:
            raise ValueError("the vla family needs action statistics: action_tokenizer.json (or OpenVLA's "
                             "dataset_statistics.json) in the model folder, or training data that fits them (an "
                             "episode folder, data.loader libero_episodes)")
        self.action_tokenizer = action_tokenizer
        self._subset = torch.as_tensor(np.asarray(action_tokenizer.action_token_ids), dtype=torch.long)

    def vocab_subset(self) -> torch.Tensor:
        return self._subset

    def sampling_constraints(self) -> tuple[tuple[int, ...], bool]:
        """Only action bins, and no stop token: a completion is a fixed number of action tokens."""
        return tuple(int(i) for i in self._subset.tolist()), False

    @property
    def tokens_per_action(self) -> int:
        """Tokens of one action vector (one per dimension)."""
        return int(self.action_tokenizer.action_dim)

    def _response(self, sample: Sample, prompt_text: str) -> tuple[list[int], list[bool] | None]:
        if sample.actions is None:
            raise DataError(f"{sample.where()}: a VLA sample needs 'actions' (a list of action vectors) as its target")
        actions = np.asarray(sample.actions, dtype=np.float64)
        try:
            ids = np.asarray(self.action_tokenizer.encode(actions)).reshape(-1).tolist()
        except ValueError as exc:
            raise DataError(f"{sample.where()}: {exc}") from exc
        eos = self.tokenizer.eos_token_id
        # The end-of-turn token follows the action span but lies outside the restricted vocabulary: not supervised.
        return ids + [eos], [True] * len(ids) + [False]

    def decode(self, token_ids: list[int] | torch.Tensor, skip_special_tokens: bool = True) -> str:
        """Text of generated ids; action tokens read ``<a12>`` (bin 12), since their ids may lie past the text
        tokenizer's vocabulary (spare embedding rows) and have no text of their own."""
        ids = token_ids.tolist() if isinstance(token_ids, torch.Tensor) else list(token_ids)
        tok = self.action_tokenizer
        pieces, text_run = [], []
        for token in ids:
            if tok.token_offset <= int(token) < tok.token_offset + tok.n_bins:
                if text_run:
                    pieces.append(self.tokenizer.decode(text_run, skip_special_tokens=skip_special_tokens))
                    text_run = []
                pieces.append(f"<a{int(tok.bin_to_index(int(token) - tok.token_offset))}>")
            else:
                text_run.append(int(token))
        if text_run:
            pieces.append(self.tokenizer.decode(text_run, skip_special_tokens=skip_special_tokens))
        return "".join(pieces)

    @property
    def interface(self) -> dict[str, Any]:
        """How observations became prompts in training (``ActionTokenizer.interface``; empty if never recorded)."""
        return dict(self.action_tokenizer.interface)

    def decode_actions(self, token_ids: torch.Tensor | list[int]) -> np.ndarray:
        """Action vectors from generated bin tokens."""
        ids = np.asarray(token_ids if not isinstance(token_ids, torch.Tensor) else token_ids.cpu().numpy())
        return self.action_tokenizer.decode(ids)
