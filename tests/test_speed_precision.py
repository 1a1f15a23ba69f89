"""Mixed precision: what ``auto`` chooses, bf16 autocast numerics against fp32, and bit-exact resume under bf16.

Tolerances. bf16 keeps 8 significant bits, unit roundoff u = 2^-8. Under autocast every matmul rounds both inputs to
bf16 and accumulates in fp32, so at first order each matmul stage perturbs its output by ≤ 2u relative. The tiny text
model has 2 layers, i.e. a sequential depth of 13 matmuls (q/k/v, scores, values, o, gate/up, down per layer, plus
the head); at first order its logits move by ≤ 2u·13·max|z| and a log-prob (a logit minus a log-sum-exp of logits)
by at most twice that.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmsft.models.loading import load_model
from mmsft.models.policy import Policy
from mmsft.train.precision import BF16_MIN_HIDDEN, model_hidden_size, resolve_mixed_precision
from mmsft.train.trainer import Trainer
from tests.test_trainer import _config, _weights

U = 2.0 ** -8
DEPTH = 13  # sequential matmuls of the 2-layer tiny text model (see the module docstring)


@pytest.mark.parametrize("choice,hidden,cuda,flags,expected", [
    ("auto", 512, False, ["amx_bf16", "avx512_bf16"], "bf16"),
    ("auto", 512, False, ["avx512_bf16"], "bf16"),
    ("auto", BF16_MIN_HIDDEN, False, ["amx_bf16"], "bf16"),
    ("auto", BF16_MIN_HIDDEN - 1, False, ["amx_bf16"], "no"),   # casts cost more than bf16 saves (docs/benchmarks.md)
    ("auto", 512, False, [], "no"),                             # no bf16 instructions: emulated, slower
    ("auto", None, False, ["amx_bf16"], "no"),                  # size unknown (hub id): stay exact
    ("auto", 64, True, [], "bf16"),                             # bf16-capable GPU
    ("no", 512, True, ["amx_bf16"], "no"),
    ("bf16", 32, False, [], "bf16"),
    ("fp16", 32, True, [], "fp16"),
])
def test_auto_choice(choice, hidden, cuda, flags, expected):
    assert resolve_mixed_precision(choice, hidden, cuda_bf16=cuda, cpu_flags=flags) == expected


def test_hidden_size_is_read_from_the_model_folder(tiny_models, tmp_path):
    assert model_hidden_size(str(tiny_models["text"])) == json.loads(
        (tiny_models["text"] / "config.json").read_text())["hidden_size"]
    vlm = json.loads((tiny_models["qwen2.5-vl"] / "config.json").read_text())
    expected = vlm.get("hidden_size") or vlm["text_config"]["hidden_size"]
    assert model_hidden_size(str(tiny_models["qwen2.5-vl"])) == expected
    assert model_hidden_size(str(tmp_path / "missing")) is None
    (tmp_path / "config.json").write_text("[1, 2]")
    assert model_hidden_size(str(tmp_path)) is None


def test_bf16_autocast_logprobs_within_roundoff_of_fp32(tiny_models):
    loaded = load_model(str(tiny_models["text"]))
    model = loaded.model.eval()
    assert model.config.num_hidden_layers == 2  # DEPTH above assumes it
    policy = Policy(model)
    torch.manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (3, 40))
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, 10:] = True
    seen: list[torch.dtype] = []
    hook = model.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with torch.no_grad():
        exact = policy({"input_ids": ids}, mask).logp
        logits = model(input_ids=ids).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = policy({"input_ids": ids}, mask).logp
    hook.remove()
    assert seen[0] == torch.float32 and seen[-1] == torch.bfloat16  # autocast really ran the head in bf16
    bound = 2 * (2 * U * DEPTH * float(logits.abs().max()))
    diff = (low - exact)[mask].abs()
    assert float(diff.max()) <= bound
    assert float(diff.max()) > 0  # the two passes did differ (bf16 was applied)
    assert abs(float(low[mask].mean() - exact[mask].mean())) <= bound


class _Crash(Trainer):
    """Stops (like a kill would) before step 3."""

    def _step(self, step):
        if step == 2:
            raise KeyboardInterrupt
        return super()._step(step)


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["train/loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "train/loss" in json.loads(line)]


def test_bf16_training_tracks_fp32_and_resumes_bit_identically(tiny_models, text_dataset, tmp_path):
    common = ("train.max_steps=4", "train.torch_threads=1", "optim.lr=1e-3", "optim.max_grad_norm=1.0")
    fp32 = Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "fp32", *common,
                           "train.mixed_precision=no"))
    fp32.train()
    assert fp32.accelerator.mixed_precision == "no"
    straight = Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "bf16", *common,
                               "train.mixed_precision=bf16"))
    straight.train()
    assert straight.accelerator.mixed_precision == "bf16"  # a second precision in one process is allowed
    assert all(p.dtype == torch.float32 for p in straight.model.parameters())  # fp32 master weights
    exact, low = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert len(exact) == len(low) == 4
    # the tiny model's logits stay below 1 in magnitude (checked in the test above); the loss is a token mean of
    # log-probs, so the same first-order bound applies per step while the weights have barely moved (lr 1e-3)
    assert all(abs(a - b) <= 2 * (2 * U * DEPTH) for a, b in zip(exact, low))
    assert exact != low

    # stopped after step 2 (checkpoint every step) and resumed: bit-identical to the uninterrupted bf16 run
    run = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _Crash(_config(tiny_models["text"], text_dataset, run, *common, "train.save_steps=1",
                       "train.mixed_precision=bf16")).train()
    Trainer(_config(tiny_models["text"], text_dataset, run, *common, "train.save_steps=1", "train.resume=auto",
                    "train.mixed_precision=bf16")).train()
    resumed, uninterrupted = _weights(run / "final"), _weights(tmp_path / "bf16" / "final")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(tensor, resumed[name]), name
    assert _losses(run)[-2:] == low[-2:]
