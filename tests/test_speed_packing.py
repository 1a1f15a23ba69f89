"""Padding-free packing: a packed micro-batch gives the same log-probs, gradients and training run as a padded one,
and the per-sample attention (mmsft.models.varlen_attention) never attends across samples.

Tolerances: packed and padded runs do the same fp32 arithmetic on the same tokens, except that matmul blocking and
the softmax reductions see rows of different lengths, so results agree to fp32 rounding (a few ulps of O(1) values,
≤ 1e-5 absolute on log-probs of magnitude ~7 after two layers), not bit for bit.
"""

from __future__ import annotations

import json

import pytest
import torch

from mmsft.config import ConfigError
from mmsft.data.loaders import load_jsonl
from mmsft.models import varlen_attention
from mmsft.models.loading import build_adapter, load_model
from mmsft.models.policy import Policy
from mmsft.train.trainer import Trainer
from tests.test_trainer import _config, _weights


def _setup(tiny_models, text_dataset, varlen: bool):
    loaded = load_model(str(tiny_models["text"]))
    if varlen:
        assert varlen_attention.enable(loaded.model)
    adapter = build_adapter(loaded)
    encoded = [adapter.encode(s) for s in load_jsonl(text_dataset)[:5]]
    assert len({len(e) for e in encoded}) > 1  # lengths differ: the padded batch has padding
    return loaded, adapter, encoded


def _loss_and_grads(policy, batch):
    policy.zero_grad()
    out = policy(batch.inputs, batch.loss_mask)
    loss = -out.logp[batch.loss_mask].sum() / batch.loss_mask.sum()
    loss.backward()
    flat = out.logp[batch.loss_mask].detach()
    return flat, {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("varlen", [True, False])
def test_packed_equals_padded_logprobs_and_gradients(tiny_models, text_dataset, varlen):
    loaded, adapter, encoded = _setup(tiny_models, text_dataset, varlen)
    policy = Policy(loaded.model)
    padded = adapter.collate(encoded)
    packed = adapter.pack(encoded)
    assert packed.inputs["input_ids"].shape == (1, sum(len(e) for e in encoded))
    assert packed.inputs["cu_seq_lens_q"].tolist() == [0, *torch.cumsum(torch.tensor([len(e) for e in encoded]), 0)]
    padded_logp, padded_grads = _loss_and_grads(policy, padded)
    packed_logp, packed_grads = _loss_and_grads(policy, packed)
    torch.testing.assert_close(packed_logp, padded_logp, atol=1e-5, rtol=0)
    assert padded_grads.keys() == packed_grads.keys()
    for name in padded_grads:
        torch.testing.assert_close(packed_grads[name], padded_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_varlen_attention_runs_once_per_sample(tiny_models, text_dataset, monkeypatch):
    loaded, adapter, encoded = _setup(tiny_models, text_dataset, True)
    lengths: list[int] = []
    real = varlen_attention.F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):  # (query length, causal without a mask?) of every SDPA call
        lengths.append((q.shape[2], bool(kwargs.get("is_causal")) and kwargs.get("attn_mask") is None))
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(varlen_attention.F, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        Policy(loaded.model)(adapter.pack(encoded).inputs, adapter.pack(encoded).loss_mask)
    layers = loaded.model.config.num_hidden_layers
    assert lengths == [(len(e), True) for e in encoded] * layers  # per sample, never the whole packed row
    lengths.clear()
    with torch.no_grad():  # a padded batch takes transformers' SDPA path unchanged (one masked call per layer)
        batch = adapter.collate(encoded)
        Policy(loaded.model)(batch.inputs, batch.loss_mask)
    assert lengths == [(batch.inputs["input_ids"].shape[1], False)] * layers


def _losses(run):
    return [json.loads(x)["train/loss"] for x in (run / "metrics.jsonl").read_text().splitlines()
            if "train/loss" in json.loads(x)]


def test_packed_training_matches_padded(tiny_models, text_dataset, tmp_path):
    common = ("train.max_steps=3", "train.micro_batch_size=4", "train.grad_accum=2", "train.torch_threads=1",
              "optim.lr=1e-3", "train.mixed_precision=no")
    Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "padded", *common)).train()
    packed = Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "packed", *common, "data.packing=true"))
    packed.train()
    assert packed.model.config._attn_implementation == varlen_attention.NAME
    a, b = _losses(tmp_path / "padded"), _losses(tmp_path / "packed")
    assert len(a) == 3 and all(abs(x - y) <= 1e-5 for x, y in zip(a, b))
    wa, wb = _weights(tmp_path / "padded" / "final"), _weights(tmp_path / "packed" / "final")
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("family,dataset,extra,message", [
    ("qwen2.5-vl", "mm_dataset", (), "the qwen-vl family has no packed batches"),
    ("text", "text_dataset", ("objective.loss_agg_mode=seq-mean-token-mean",), "loss_agg_mode 'seq-mean-token-mean'"),
])
def test_packing_refuses_what_it_cannot_do(tiny_models, request, tmp_path, family, dataset, extra, message):
    cfg = _config(tiny_models[family], request.getfixturevalue(dataset), tmp_path / "run", "data.packing=true", *extra)
    with pytest.raises(ConfigError, match=message):
        Trainer(cfg).train()
