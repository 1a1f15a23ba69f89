"""Rollout engines behind one interface; the Hugging Face ``generate`` engine is the default.

``HFGenerateEngine.generate(prompts, params)`` samples ``params.n`` completions per prompt in batched ``generate``
calls with the KV cache. Each prompt is encoded once; its visual tensors are reused for all n copies. Vision
placeholder tokens are suppressed (a sampled ``<|image_pad|>`` would break the next forward pass). The sampler's
log-probs (after temperature / top-k / top-p) are recorded one step at a time, so at most B×V floats are held — never
the B×T×V ``output_scores`` tensor. Runs are reproducible for a given ``params.seed``.

``params.vocab_subset`` constrains sampling to those token ids (a VLA's action bins; the adapter's stop tokens are
added unless ``params.allow_stop`` is false, in which case exactly ``max_new_tokens`` tokens are generated). The
mask is applied before temperature / top-k / top-p, so the recorded log-probs are those of the restricted
distribution the trainer scores with ``head_logprobs(..., vocab_subset=...)``.

``params.row_seeds`` (one per prompt) gives every completion its own random stream: the token is the argmax of the
processed logits plus Gumbel noise drawn from a generator seeded by the row's seed (the Gumbel-max trick samples
exactly from the same softmax). A completion then depends only on its prompt and its seed, not on the batch it was
generated in or on the other rows — evaluations of two policies on the same seeds are paired episode by episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from mmsft.models.adapters import Encoded, ModalityAdapter


@dataclass(frozen=True)
class SamplingParams:
    n: int = 4
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop_strings: tuple[str, ...] = ()
    seed: int = 0
    vocab_subset: tuple[int, ...] | None = None  # sample only these ids (plus the stop tokens if allow_stop)
    allow_stop: bool = True  # False: no stop token can be sampled; every completion has max_new_tokens tokens
    row_seeds: tuple[int, ...] | None = None  # one per prompt: per-completion random streams (module docstring)
    stop_temperature: float = 1.0  # TLDR temperature scaling of the stop decision (mmsft.objectives.decoding); 1 = off
    stop_temperature_ids: tuple[int, ...] = ()  # the ids it applies to (empty: the adapter's stop tokens)


@dataclass
class Rollout:
    """One sampled completion of one prompt."""

    prompt_index: int
    prompt: Encoded
    completion_ids: torch.Tensor  # (L,) generated tokens up to and including the stop token
    sampler_logp: torch.Tensor  # (L,) log-probs under the sampling distribution
    text: str
    truncated: bool  # hit max_new_tokens without a stop token or stop string
    extras: dict[str, Any] = field(default_factory=dict)

    def as_encoded(self) -> Encoded:
        """Prompt + completion as a training sequence; the loss mask covers the completion."""
        ids = torch.cat([self.prompt.input_ids, self.completion_ids])
        mask = torch.cat([torch.zeros(len(self.prompt), dtype=torch.bool), torch.ones(len(self.completion_ids), dtype=torch.bool)])
        return Encoded(self.prompt.sample_id, ids, mask, self.prompt.mm)


class RolloutEngine(Protocol):
    def generate(self, prompts: list[Encoded], params: SamplingParams) -> list[Rollout]:
        """``len(prompts) * params.n`` rollouts, the n of each prompt contiguous."""


class _SamplerLogprobRecorder:
    """Logits processor placed after the sampling warpers: keeps log-softmax of one step and, on the next call, the
    log-prob of the token that was sampled from it."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []
        self._previous: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._collect(input_ids[:, -1])
        self._previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def _collect(self, tokens: torch.Tensor) -> None:
        if self._previous is not None:
            self.steps.append(self._previous.gather(-1, tokens.unsqueeze(-1)).squeeze(-1))
            self._previous = None

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        self._collect(last_tokens)
        return torch.stack(self.steps, dim=1) if self.steps else torch.zeros(len(last_tokens), 0)


class _AllowedTokens:
    """Logits processor: every id outside ``allowed`` gets −inf (so it is never sampled and has probability 0)."""

    def __init__(self, allowed: list[int]) -> None:
        if not allowed:
            raise ValueError("vocab_subset is empty: no token could be sampled")
        self.allowed = torch.tensor(sorted(set(allowed)), dtype=torch.long)
        self._mask: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._mask is None or self._mask.shape[-1] != scores.shape[-1] or self._mask.device != scores.device:
            if int(self.allowed.max()) >= scores.shape[-1]:
                raise ValueError(f"vocab_subset holds id {int(self.allowed.max())} but the model's vocabulary has "
                                 f"{scores.shape[-1]} entries")
            mask = torch.ones(scores.shape[-1], dtype=torch.bool, device=scores.device)
            mask[self.allowed.to(scores.device)] = False
            self._mask = mask
        return scores.masked_fill(self._mask, float("-inf"))


class _GumbelRows:
    """Logits processor placed after the recorder: adds per-row Gumbel(0, 1) noise from per-row generators, so that
    the argmax is a sample of ``softmax(scores)`` driven by that row's stream alone (Gumbel-max trick)."""

    def __init__(self, seeds: list[int]) -> None:
        self.generators = [torch.Generator().manual_seed(int(s) % (2**63)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        width = scores.shape[-1]
        uniform = torch.stack([torch.rand(width, generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(min=1e-300)))
        return scores.float() + gumbel.to(device=scores.device, dtype=torch.float32)


class HFGenerateEngine:
    """Batched sampling with ``model.generate``; ``model_fn`` returns the current (unwrapped) model."""

    def __init__(self, model_fn: Callable[[], Any], adapter: ModalityAdapter, batch_size: int = 64) -> None:
        self.model_fn, self.adapter, self.batch_size = model_fn, adapter, batch_size

    def _processors(self, params: SamplingParams, recorder: _SamplerLogprobRecorder) -> list:
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        chain: list = []
        if params.vocab_subset is not None:
            allowed = list(params.vocab_subset) + (list(self.adapter.stop_token_ids) if params.allow_stop else [])
            chain.append(_AllowedTokens(allowed))
        elif not params.allow_stop:
            raise ValueError("allow_stop=False needs a vocab_subset that excludes the stop tokens")
        if params.temperature > 0 and params.temperature != 1.0:
            chain.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k > 0:
            chain.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            chain.append(TopPLogitsWarper(params.top_p))
        if params.stop_temperature != 1.0:
            from mmsft.objectives.decoding import StopTokenTemperature

            chain.append(StopTokenTemperature(params.stop_temperature_ids or self.adapter.stop_token_ids,
                                              params.stop_temperature))
        return chain + [recorder]

    @torch.no_grad()
    def generate(self, prompts: list[Encoded], params: SamplingParams) -> list[Rollout]:
        from transformers import LogitsProcessorList

        model = self.model_fn()
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        stop_ids = set(self.adapter.stop_token_ids) if params.allow_stop else set()
        expanded = [(i, p) for i, p in enumerate(prompts) for _ in range(params.n)]
        per_row = params.row_seeds is not None and params.temperature > 0
        if params.row_seeds is not None and len(params.row_seeds) != len(prompts):
            raise ValueError(f"row_seeds has {len(params.row_seeds)} seeds for {len(prompts)} prompts")
        rollouts: list[Rollout] = []
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(params.seed)
        try:
            for start in range(0, len(expanded), self.batch_size):
                chunk = expanded[start:start + self.batch_size]
                batch = self.adapter.collate([p for _, p in chunk], padding_side="left").to(device)
                recorder = _SamplerLogprobRecorder()
                processors = self._processors(params, recorder)
                if per_row:  # row r of the chunk is copy k of prompt i: its own stream
                    copies = [start + r - i * params.n for r, (i, _) in enumerate(chunk)]
                    processors.append(_GumbelRows([params.row_seeds[i] * 1_000_003 + k  # type: ignore[index]
                                                   for (i, _), k in zip(chunk, copies)]))
                kwargs: dict[str, Any] = dict(
                    max_new_tokens=params.max_new_tokens, do_sample=params.temperature > 0 and not per_row,
                    temperature=1.0, top_p=1.0, top_k=0, eos_token_id=sorted(stop_ids) or None,
                    pad_token_id=self.adapter.pad_token_id, logits_processor=LogitsProcessorList(processors),
                    return_dict_in_generate=True)
                if self.adapter.suppressed_token_ids:
                    kwargs["suppress_tokens"] = self.adapter.suppressed_token_ids
                if params.stop_strings:
                    kwargs.update(stop_strings=list(params.stop_strings), tokenizer=self.adapter.tokenizer)
                out = model.generate(**batch.inputs, **kwargs)
                new_tokens = out.sequences[:, batch.inputs["input_ids"].shape[1]:].cpu()
                logps = recorder.finish(out.sequences[:, -1]).cpu()
                for row, (prompt_index, prompt) in enumerate(chunk):
                    rollouts.append(self._rollout(prompt_index, prompt, new_tokens[row], logps[row], stop_ids, params))
        finally:
            torch.random.set_rng_state(generator_state)
            model.train(was_training)
        return rollouts

    def _rollout(self, prompt_index: int, prompt: Encoded, tokens: torch.Tensor, logps: torch.Tensor,
                 stop_ids: set[int], params: SamplingParams) -> Rollout:
        length, stopped = len(tokens), False
        for position, token in enumerate(tokens.tolist()):
            if token in stop_ids:
                length, stopped = position + 1, True
                break
        completion = tokens[:length]
        text = self.adapter.decode(completion, skip_special_tokens=True)
        if not stopped and params.stop_strings:
            stopped = any(text.endswith(s) or s in text for s in params.stop_strings) and length < params.max_new_tokens
        # a fixed-length span (allow_stop=False) ends by design at max_new_tokens: that is not a truncation
        truncated = not stopped and length >= params.max_new_tokens and params.allow_stop
        return Rollout(prompt_index, prompt, completion.clone(), logps[:length].clone(), text, truncated)
