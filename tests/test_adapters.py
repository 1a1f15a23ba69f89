"""Modality adapters: response log-probs are the same alone and in padded batches (left and right), packed equals
padded for text, split/merge round-trips multimodal tensors, and the VLA adapter exposes the action span."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsft.data.loaders import load_jsonl
from mmsft.models.loading import build_adapter, load_model
from mmsft.models.policy import Policy


def _load(path):
    loaded = load_model(str(path))
    return loaded, build_adapter(loaded)


def _response_logps(policy, adapter, encoded, side):
    batch = adapter.collate(encoded, padding_side=side)
    with torch.no_grad():
        out = policy(batch.inputs, batch.loss_mask, vocab_subset=adapter.vocab_subset())
    return [out.logp[i][batch.loss_mask[i]] for i in range(len(encoded))]


def _check_padding_invariance(policy, adapter, samples):
    encoded = [adapter.encode(s) for s in samples]
    alone = [_response_logps(policy, adapter, [e], "right")[0] for e in encoded]
    for side in ("left", "right"):
        batched = _response_logps(policy, adapter, encoded, side)
        for a, b in zip(alone, batched):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl"])
def test_vl_padding_invariance_image_and_video(tiny_models, mm_dataset, family):
    loaded, adapter = _load(tiny_models[family])
    samples = load_jsonl(mm_dataset)
    _check_padding_invariance(Policy(loaded.model), adapter, samples)


def test_text_padding_invariance_and_packing(tiny_models, text_dataset):
    loaded, adapter = _load(tiny_models["text"])
    policy = Policy(loaded.model)
    samples = load_jsonl(text_dataset)[:5]
    _check_padding_invariance(policy, adapter, samples)
    encoded = [adapter.encode(s) for s in samples]
    padded = _response_logps(policy, adapter, encoded, "right")
    packed = adapter.pack(encoded)
    with torch.no_grad():
        out = policy(packed.inputs, packed.loss_mask)
    flat = out.logp[0][packed.loss_mask[0]]
    torch.testing.assert_close(flat, torch.cat(padded), atol=1e-5, rtol=0)


def test_mm_token_type_ids_and_split_merge(tiny_models, mm_dataset):
    loaded, adapter = _load(tiny_models["qwen2.5-vl"])
    samples = load_jsonl(mm_dataset)
    encoded = [adapter.encode(s) for s in samples]
    batch = adapter.collate(encoded, padding_side="left")
    types = batch.inputs["mm_token_type_ids"]
    assert int((types == 1).sum()) > 0 and int((types == 2).sum()) > 0
    assert "second_per_grid_ts" in batch.inputs and "pixel_values_videos" in batch.inputs
    pieces = adapter.split(batch)
    for original, piece in zip(encoded, pieces):
        assert torch.equal(original.input_ids, piece.input_ids)
        assert torch.equal(original.loss_mask, piece.loss_mask)
        assert sorted(original.mm) == sorted(piece.mm)
        for key in original.mm:
            torch.testing.assert_close(original.mm[key], piece.mm[key])
    merged = adapter.collate(pieces, padding_side="left")
    for key in batch.inputs:
        torch.testing.assert_close(batch.inputs[key], merged.inputs[key])


def test_loss_mask_covers_only_the_response(tiny_models, mm_dataset):
    loaded, adapter = _load(tiny_models["qwen2.5-vl"])
    sample = load_jsonl(mm_dataset)[0]
    encoded = adapter.encode(sample)
    assert adapter.decode(encoded.input_ids[encoded.loss_mask], skip_special_tokens=False) == "red<|im_end|>"
    prompt = adapter.encode(sample, with_target=False)
    assert torch.equal(prompt.input_ids, encoded.input_ids[: len(prompt)])
    assert not prompt.loss_mask.any()


def test_vla_action_span_and_restricted_vocab(tiny_models, vla_dataset):
    loaded, adapter = _load(tiny_models["vla"])
    assert loaded.family == "vla"
    samples = load_jsonl(vla_dataset)
    encoded = adapter.encode(samples[0])
    span = encoded.input_ids[encoded.loss_mask]
    subset = adapter.vocab_subset()
    assert len(span) == 7 and bool(torch.isin(span, subset).all())
    decoded = adapter.decode_actions(span)
    width = np.asarray(loaded.action_tokenizer.bin_width)
    assert np.all(np.abs(decoded.reshape(-1) - np.asarray(samples[0].actions).reshape(-1)) <= width / 2 + 1e-6)
    _check_padding_invariance(Policy(loaded.model), adapter, samples)
