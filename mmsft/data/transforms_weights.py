"""Per-token loss weights computed from data, written to a row's ``token_weights`` (one weight per supervised target
token, exactly as the model's adapter encodes the sample), for token-weighted cross-entropy (the ``sft`` and ``dft``
losses multiply their per-token loss by them).

* FAIT / FGIT (Fan et al., "Fault-Aware Fine-Tuning for code", arXiv 2503.16913): upweight the *error-sensitive*
  tokens of a correct program c⁺, found by diffing it against a similar but incorrect variant c⁻ (``meta.negative``):
  line level (lines of c⁺ that differ from c⁻, ``difflib``) and token level (the differing characters inside those
  lines). w_j = 1 + a_line·m_line_j + a_tok·m_tok_j. The paper's dynamic re-weighting schedule could not be recovered;
  a_line, a_tok and the per-sample renormalisation (mean weight 1) are arguments.
* TL-Training PKT (Ye et al., arXiv 2412.15495; released ``pkt/utils.py``): key tool-selection tokens — the first token
  of the called tool's name and, for every other available tool sharing a prefix with it, the token where the names
  diverge — get w = min(N_other/N_key, w_max) (only when N_key < N_other; w_max = 9), every other token 1; the last
  token of each argument value can get its own weight (1 in the released code). The released training used batch
  size 1, so its Σw normaliser is per sample: ``normalize=True`` rescales each sample's weights to mean 1, which
  makes token-mean aggregation equal Σ_t w_t ℓ_t / Σ_t w_t per sample.
* MAE (same paper): split a multi-turn trajectory into one sample per assistant turn and drop the turns whose next
  message (the tool's reply) carries an error signature — :func:`mae_split`.

Token ↔ character alignment: the sample is encoded with the adapter, its supervised tokens are decoded piece by
piece (a sliding window keeps multi-byte characters whole, checked against one full decode), and the target text is
located inside the decoded response; a character-level mask becomes a token mask (a token is marked when any of its
characters is).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from mmsft.data.schema import DataError, Message, Sample

_WINDOW = 8  # tokens of left context when decoding one token's text


def token_char_spans(adapter: Any, sample: Sample) -> tuple[list[tuple[int, int]], int]:
    """Character spans of each supervised token within the target text (clipped; tokens outside the target, e.g. the
    end-of-turn marker, get empty spans) and the number of supervised tokens."""
    target = sample.target
    if target is None or not target.text:
        raise DataError(f"{sample.where()}: token weights from text need a text target (a final assistant message)")
    encoded = adapter.encode(sample, with_target=True)
    ids = encoded.input_ids[encoded.loss_mask].tolist()
    decode = adapter.tokenizer.decode
    pieces = []
    for k in range(len(ids)):
        start = max(0, k - _WINDOW)
        pieces.append(len(decode(ids[start:k + 1])) - len(decode(ids[start:k])))
    full = decode(ids)
    if sum(pieces) != len(full):  # a normalising decoder: fall back to exact prefix decoding (quadratic, rare)
        pieces = [len(decode(ids[:k + 1])) - len(decode(ids[:k])) for k in range(len(ids))]
    text = target.text
    offset = full.find(text)
    if offset < 0:
        offset = full.find(text.strip())
        text = text.strip()
    if offset < 0:
        raise DataError(f"{sample.where()}: the target text does not appear verbatim in the decoded response tokens; "
                        "cannot map character positions to tokens")
    spans, position = [], 0
    for size in pieces:
        lo, hi = position - offset, position + size - offset
        spans.append((max(lo, 0), min(max(hi, 0), len(text))))
        position += size
    return spans, len(ids)


def chars_to_token_mask(spans: list[tuple[int, int]], marked: list[bool]) -> list[bool]:
    """A token is marked when any of its characters is."""
    return [any(marked[lo:hi]) for lo, hi in spans]


def _normalized(weights: list[float], normalize: bool) -> list[float]:
    if not normalize or not weights:
        return weights
    mean = sum(weights) / len(weights)
    return [w / mean for w in weights] if mean > 0 else weights


# ---- FAIT -----------------------------------------------------------------------------------------------------------
@dataclass
class FaitArgs:
    line_weight: float = field(default=1.0, metadata={"help": "a_line: extra weight of tokens on changed lines "
                                                               "[unverified].", "ge": 0})
    token_weight: float = field(default=1.0, metadata={"help": "a_tok: extra weight of the differing characters' "
                                                                "tokens [unverified].", "ge": 0})
    normalize: bool = field(default=True, metadata={"help": "Rescale each sample's weights to mean 1."})
    negative_key: str = field(default="negative", metadata={"help": "meta key of the incorrect variant c⁻."})


def fault_masks(correct: str, negative: str) -> tuple[list[bool], list[bool]]:
    """Character masks over ``correct``: (on a line that differs from ``negative``, a differing character)."""
    line_mask, char_mask = [False] * len(correct), [False] * len(correct)
    a_lines, b_lines = correct.splitlines(keepends=True), negative.splitlines(keepends=True)
    starts = [0]
    for line in a_lines:
        starts.append(starts[-1] + len(line))
    b_starts = [0]
    for line in b_lines:
        b_starts.append(b_starts[-1] + len(line))
    matcher = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or i1 == i2:
            continue
        lo, hi = starts[i1], starts[i2]
        line_mask[lo:hi] = [True] * (hi - lo)
        segment, other = correct[lo:hi], negative[b_starts[j1]:b_starts[j2]]
        inner = difflib.SequenceMatcher(None, segment, other, autojunk=False)
        for t, a1, a2, _, _ in inner.get_opcodes():
            if t != "equal":
                char_mask[lo + a1:lo + a2] = [True] * (a2 - a1)
    return line_mask, char_mask


def fait_weights(sample: Sample, adapter: Any, args: FaitArgs) -> list[float]:
    """FAIT token weights of ``sample`` (correct target, incorrect variant in ``meta[args.negative_key]``)."""
    negative = sample.meta.get(args.negative_key)
    if not isinstance(negative, str):
        raise DataError(f"{sample.where()}: FAIT needs the incorrect variant as a string in meta.{args.negative_key}")
    spans, _ = token_char_spans(adapter, sample)
    line_mask, char_mask = fault_masks(sample.target.text, negative)
    on_line, on_char = chars_to_token_mask(spans, line_mask), chars_to_token_mask(spans, char_mask)
    weights = [1.0 + args.line_weight * a + args.token_weight * b for a, b in zip(on_line, on_char)]
    return _normalized(weights, args.normalize)


# ---- TL-Training PKT ------------------------------------------------------------------------------------------------
@dataclass
class PktArgs:
    max_weight: float = field(default=9.0, metadata={"help": "w_max capping N_other/N_key (released code: 9).",
                                                      "gt": 0})
    param_weight: float = field(default=1.0, metadata={"help": "Weight of the last token of each argument value "
                                                                "(released code: 1).", "gt": 0})
    normalize: bool = field(default=True, metadata={"help": "Rescale each sample's weights to mean 1 (the released "
                                                             "Σw normaliser at batch size 1)."})


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def pkt_weights(sample: Sample, adapter: Any, args: PktArgs) -> list[float]:
    """TL-Training key-token weights: ``meta.tool_name`` (the called tool), ``meta.tools`` (available tool names),
    optional ``meta.tool_args`` (argument values whose last token gets ``param_weight``)."""
    name, tools = sample.meta.get("tool_name"), sample.meta.get("tools", [])
    if not isinstance(name, str) or not name or not isinstance(tools, list):
        raise DataError(f"{sample.where()}: TL-Training needs meta.tool_name (the called tool) and meta.tools (a list "
                        "of available tool names)")
    text = sample.target.text if sample.target is not None else ""
    at = text.find(name)
    if at < 0:
        raise DataError(f"{sample.where()}: the called tool name {name!r} does not appear in the target")
    spans, count = token_char_spans(adapter, sample)
    key_chars = [False] * len(text)
    key_chars[at] = True
    for other in tools:
        if isinstance(other, str) and other != name:
            split = _common_prefix(name, other)
            if 0 < split < len(name):
                key_chars[at + split] = True
    key = chars_to_token_mask(spans, key_chars)
    n_key = sum(key)
    n_other = count - n_key
    key_weight = min(n_other / n_key, args.max_weight) if 0 < n_key < n_other else 1.0
    weights = [key_weight if k else 1.0 for k in key]
    values = sample.meta.get("tool_args") or {}
    if args.param_weight != 1.0 and isinstance(values, dict):
        param_chars = [False] * len(text)
        for value in values.values():
            value = str(value)
            where = text.find(value, at + len(name)) if value else -1
            if where >= 0:
                param_chars[where + len(value) - 1] = True
        for i, marked in enumerate(chars_to_token_mask(spans, param_chars)):
            if marked and not key[i]:
                weights[i] = args.param_weight
    return _normalized(weights, args.normalize)


# ---- MAE ------------------------------------------------------------------------------------------------------------
ERROR_SIGNATURES = ("is not defined", "unexpected keyword", "Invalid API call", "400 Client Error")


def mae_split(sample: Sample, signatures: Iterable[str] = ERROR_SIGNATURES) -> tuple[list[Sample], int]:
    """One sample per assistant turn (its history as the prompt, supervising only that turn); turns whose next message
    contains an error signature are dropped. Returns (samples, number dropped)."""
    signatures = tuple(signatures)
    out, dropped = [], 0
    for index, message in enumerate(sample.messages):
        if message.role != "assistant" or index == 0:
            continue
        following: Message | None = sample.messages[index + 1] if index + 1 < len(sample.messages) else None
        if following is not None and any(s in following.text for s in signatures):
            dropped += 1
            continue
        out.append(replace(sample, id=f"{sample.id}#turn{index}", messages=list(sample.messages[:index + 1]),
                           token_weights=None))
    return out, dropped


def with_token_weights(sample: Sample, weights: list[float]) -> Sample:
    """``sample`` carrying ``weights`` as its ``token_weights``."""
    return replace(sample, token_weights=list(weights))
