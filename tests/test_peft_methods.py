"""mmsft's peft tuners (SSF, sparse LT-SFT / SpIEL, LoRAMoE): save → load → identical outputs, trainable-parameter
counts, one optimizer step changes only the intended parameters, merging where it is defined, composition of two
sparse adapters, and the golden arithmetic of the LT-SFT mask, SpIEL drop-and-grow and LoRAMoE's balancing loss."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmsft.peft_methods import (LocFTConfig, LocFTLayer, LoRAMoEConfig, LoRAMoELayer, SparseConfig, SparseLayer,
                                SSFConfig, SSFLayer, balance_loss, lottery_ticket_masks, save_masks)
from mmsft.peft_methods.common import tuner_layers

IDS = torch.tensor([[1, 5, 9, 3, 7, 2], [4, 4, 8, 6, 1, 0]])


def _base(path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path).eval()


def _peft(path, config):
    from peft import get_peft_model

    torch.manual_seed(1)
    return get_peft_model(_base(path), config)


def _perturb(model, cls, names):
    g = torch.Generator().manual_seed(2)
    for _, layer in tuner_layers(model, cls):
        for name in names:
            for p in getattr(layer, name).values():
                p.data += torch.randn(p.shape, generator=g) * 0.1


CASES = {
    "ssf": (lambda: SSFConfig(target_modules=["q_proj", "down_proj", "input_layernorm"], task_type="CAUSAL_LM"),
            SSFLayer, ("ssf_scale", "ssf_shift")),
    "sparse": (lambda: SparseConfig(density=0.05, task_type="CAUSAL_LM"), SparseLayer, ("sparse_values",)),
    "locft": (lambda: LocFTConfig(target_modules=["down_proj"], layers_to_transform=[0], task_type="CAUSAL_LM"),
              LocFTLayer, ("locft_delta",)),
    "loramoe": (lambda: LoRAMoEConfig(num_experts=4, r=2, lora_dropout=0.0, task_type="CAUSAL_LM"), LoRAMoELayer,
                ("loramoe_B",)),
}


def _expected_trainable(model, method, config):
    total = 0
    for _, layer in tuner_layers(model, CASES[method][1]):
        base = layer.get_base_layer()
        if method == "ssf":
            total += 2 * layer.width
        elif method == "locft":
            total += base.weight.numel()
        elif method == "sparse":
            total += math.ceil(config.density * base.weight.numel())
        else:
            total += config.num_experts * (config.r * base.in_features + base.out_features * config.r
                                           + base.in_features)
    return total


@pytest.mark.parametrize("method", sorted(CASES))
def test_save_load_identical_and_param_counts(method, tiny_models, tmp_path):
    from peft import PeftModel

    make, cls, names = CASES[method]
    config = make()
    model = _peft(tiny_models["text"], config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == _expected_trainable(model, method, config) > 0
    assert len(tuner_layers(model, cls)) > 0
    _perturb(model, cls, names)
    model.eval()
    out = model(input_ids=IDS).logits
    model.save_pretrained(tmp_path / "a")
    loaded = PeftModel.from_pretrained(_base(tiny_models["text"]), tmp_path / "a").eval()
    assert torch.equal(out, loaded(input_ids=IDS).logits)
    assert not torch.equal(out, _base(tiny_models["text"])(input_ids=IDS).logits)  # the adapter does something


@pytest.mark.parametrize("method", sorted(CASES))
def test_one_step_changes_only_intended_parameters(method, tiny_models):
    make, cls, names = CASES[method]
    model = _peft(tiny_models["text"], make())
    _perturb(model, cls, names)  # LoRAMoE: B ≠ 0 so A and the router get gradients too
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    base_eff = {k: l.delta("default").clone() for k, l in tuner_layers(model, SparseLayer)}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(input_ids=IDS, labels=IDS).loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    prefix = {"ssf": "ssf_", "sparse": "sparse_values", "loramoe": "loramoe_", "locft": "locft_"}[method]
    assert changed and all(prefix in n for n in changed), sorted(changed)[:5]
    adapter = {n for n in before if prefix in n}
    assert changed == adapter  # every adapter tensor moved, nothing else did
    for key, layer in tuner_layers(model, SparseLayer):  # the weight update lives on η only
        moved = (layer.delta("default") - base_eff[key]).flatten().nonzero().flatten()
        assert set(moved.tolist()) <= set(layer.sparse_indices["default"].tolist())


def test_ssf_merge_matches_and_bias_free_merge_refuses(tiny_models):
    model = _peft(tiny_models["text"], SSFConfig(target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    _perturb(model, SSFLayer, ("ssf_scale", "ssf_shift"))
    out = model(input_ids=IDS).logits
    merged = model.merge_and_unload()
    assert not tuner_layers(merged, SSFLayer)
    assert torch.allclose(merged(input_ids=IDS).logits, out, atol=1e-5)  # fp32 re-association only
    bias_free = _peft(tiny_models["text"], SSFConfig(target_modules=["down_proj"], task_type="CAUSAL_LM"))
    with pytest.raises(ValueError, match="without a bias"):
        bias_free.merge_and_unload()
    identity = _peft(tiny_models["text"], SSFConfig(target_modules=["down_proj"], init_std=0.0,
                                                    task_type="CAUSAL_LM"))
    assert torch.equal(identity(input_ids=IDS).logits, _base(tiny_models["text"])(input_ids=IDS).logits)


def test_loramoe_refuses_to_merge(tiny_models):
    model = _peft(tiny_models["text"], CASES["loramoe"][0]())
    with pytest.raises(ValueError, match="depend on the input"):
        model.merge_and_unload()


def test_sparse_merge_and_composition_of_two_tasks(tiny_models, tmp_path):
    from peft import PeftModel

    for name, seed in (("lang", 0), ("task", 1)):
        model = _peft(tiny_models["text"], SparseConfig(density=0.05, seed=seed, task_type="CAUSAL_LM"))
        _perturb(model, SparseLayer, ("sparse_values",))
        model.save_pretrained(tmp_path / name)
    composed = PeftModel.from_pretrained(_base(tiny_models["text"]), tmp_path / "lang", adapter_name="lang")
    composed.load_adapter(tmp_path / "task", adapter_name="task")
    composed.base_model.set_adapter(["lang", "task"])
    both = composed(input_ids=IDS).logits
    # reference: θ0 + φ_lang + φ_task written into a plain model
    reference = _base(tiny_models["text"])
    weights = dict(reference.named_parameters())
    for key, layer in tuner_layers(composed, SparseLayer):
        inner = key.removeprefix("base_model.model.")
        with torch.no_grad():
            weights[inner + ".weight"] += layer.delta("lang") + layer.delta("task")
    assert torch.allclose(both, reference(input_ids=IDS).logits, atol=1e-6)
    merged = composed.merge_and_unload(adapter_names=["lang", "task"])
    assert torch.allclose(merged(input_ids=IDS).logits, both, atol=1e-6)


def test_lottery_ticket_masks_golden(tmp_path, tiny_models):
    theta0 = {"a.weight": torch.zeros(2, 3), "b.weight": torch.zeros(2, 2), "n.bias": torch.zeros(3)}
    theta1 = {"a.weight": torch.tensor([[0.1, -0.9, 0.0], [0.5, 0.0, 0.0]]),
              "b.weight": torch.tensor([[0.0, 0.5], [-0.7, 0.2]]), "n.bias": torch.ones(3)}
    masks = lottery_ticket_masks(theta0, theta1, k=4)
    # |Δ| ranking: a[1]=.9, b[2]=.7, a[3]=.5, b[1]=.5 (tie: a comes first in the flat order) → k = 4
    assert masks["a"].tolist() == [1, 3] and masks["b"].tolist() == [1, 2]
    assert {k: v.tolist() for k, v in lottery_ticket_masks(theta0, theta1, density=0.1).items()} == {"a": [1], "b": []}
    with pytest.raises(ValueError, match="exactly one"):
        lottery_ticket_masks(theta0, theta1)
    # a saved mask drives the adapter's index set
    base = _base(tiny_models["text"])
    key = "model.layers.0.mlp.down_proj"
    numel = dict(base.named_parameters())[key + ".weight"].numel()
    path = save_masks({key: torch.tensor([0, 5, numel - 1])}, tmp_path / "mask.safetensors")
    model = _peft(tiny_models["text"], SparseConfig(target_modules=["down_proj"], layers_to_transform=[0],
                                                    mask_path=str(path), task_type="CAUSAL_LM"))
    (_, layer), = tuner_layers(model, SparseLayer)
    assert layer.sparse_indices["default"].tolist() == [0, 5, numel - 1]


def test_spiel_drop_and_grow_golden():
    config = SparseConfig(density=0.25, regrow_every=1, task_type="CAUSAL_LM")
    layer = SparseLayer(nn.Linear(4, 2, bias=False), "default", config, "x")  # 8 weights, k = 2
    layer.sparse_indices["default"].copy_(torch.tensor([0, 1]))
    layer.sparse_values["default"].data = torch.tensor([0.5, -0.01])
    layer.sparse_grad_acc["default"].copy_(torch.tensor([9.0, 9.0, 0.1, 3.0, 0.2, 0.0, 0.0, 0.0]))
    opt = torch.optim.Adam([layer.sparse_values["default"]])
    opt.state[layer.sparse_values["default"]] = {"exp_avg": torch.ones(2), "exp_avg_sq": torch.ones(2)}
    assert layer.reselect("default", 0.5, opt) == 1
    # drop slot 1 (|φ| = .01), grow flat index 3 (largest accumulated |grad| among inactive positions)
    assert layer.sparse_indices["default"].tolist() == [0, 3]
    assert layer.sparse_values["default"].tolist() == [0.5, 0.0]
    assert opt.state[layer.sparse_values["default"]]["exp_avg"].tolist() == [1.0, 0.0]
    assert float(layer.sparse_grad_acc["default"].abs().sum()) == 0.0


def test_loramoe_balance_loss_golden():
    gates = torch.tensor([[[0.8, 0.2]], [[0.3, 0.7]]])
    # Q = [[.8, .2], [.3, .7]]; I (δ=.5, expert 0 = knowledge) = [[1.5, .5], [.5, 1.5]]; Z = [[1.2, .1], [.15, 1.05]]
    # mean .625, population var .64375 − .390625 = .253125 → .253125 / .390625
    value = balance_loss(gates, torch.ones(2, 1), torch.tensor([0, 1]), knowledge=1, delta=0.5)
    assert float(value) == pytest.approx(0.648, rel=1e-6)  # float32 arithmetic
    masked = balance_loss(torch.cat([gates, torch.full((2, 1, 2), 0.5)], 1), torch.tensor([[1, 0], [1, 0]]),
                          torch.tensor([0, 1]), knowledge=1, delta=0.5)
    assert float(masked) == pytest.approx(0.648, rel=1e-6)  # float32 arithmetic  # padding tokens do not count
    with pytest.raises(ValueError, match="task_type"):
        balance_loss(gates, torch.ones(2, 1), torch.tensor([0, 2]), knowledge=1, delta=0.5)


def test_locft_edits_one_tensor_and_merges_exactly(tiny_models):
    model = _peft(tiny_models["text"], CASES["locft"][0]())
    (name, layer), = tuner_layers(model, LocFTLayer)
    assert name.endswith("layers.0.mlp.down_proj")
    _perturb(model, LocFTLayer, ("locft_delta",))
    out = model(input_ids=IDS).logits
    assert torch.allclose(model.merge_and_unload()(input_ids=IDS).logits, out, atol=1e-6)
    with pytest.raises(ValueError, match="target_modules"):
        LocFTConfig(task_type="CAUSAL_LM")


def test_roste_fake_quant_and_hadamard_golden():
    from mmsft.peft_methods import fake_quant, hadamard

    t = torch.tensor([[0.7, -0.2, 0.05]], requires_grad=True)
    # 3 bits: qmax 3, scale .7/3 → round([3, −.857, .214]) = [3, −1, 0] → [.7, −.2333, 0]
    q = fake_quant(t, 3)
    assert q.detach().tolist()[0] == pytest.approx([0.7, -0.7 / 3, 0.0])
    q.sum().backward()
    assert t.grad.tolist() == [[1.0, 1.0, 1.0]]  # straight-through
    assert torch.equal(fake_quant(t, 0), t)
    for n in (8, 12, 7):  # power of two, block-diagonal (4), odd (1×1 blocks)
        r = hadamard(n, seed=1)
        assert torch.allclose(r @ r.T, torch.eye(n), atol=1e-6)
    # an outlier column quantises with less error after rotation
    from mmsft.peft_methods.roste import quant_error

    # (per-row scales: an outlier of 50 among N(0, 1) entries zeroes the rest; rotated, it is spread over 16 entries)
    w = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    w[:, 3] = 50.0
    assert quant_error(w @ hadamard(16), 4) < 0.5 * quant_error(w, 4)


def test_roste_save_load_step_and_merge(tiny_models, tmp_path):
    from peft import PeftModel

    from mmsft.peft_methods import RoSTEConfig, RoSTELayer

    config = RoSTEConfig(target_modules=["q_proj", "down_proj"], bits_w=4, bits_a=8, task_type="CAUSAL_LM")
    model = _peft(tiny_models["text"], config)
    layers = tuner_layers(model, RoSTELayer)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == sum(
        l.get_base_layer().weight.numel() for _, l in layers)
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(input_ids=IDS, labels=IDS).loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed == {n for n in before if "roste_delta" in n}
    model.eval()
    out = model(input_ids=IDS).logits
    model.save_pretrained(tmp_path / "r")
    loaded = PeftModel.from_pretrained(_base(tiny_models["text"]), tmp_path / "r").eval()
    assert torch.equal(out, loaded(input_ids=IDS).logits)
    with pytest.raises(ValueError, match="activations"):
        loaded.merge_and_unload()
    weights_only = _peft(tiny_models["text"], RoSTEConfig(target_modules=["q_proj"], bits_a=0, rotate="always",
                                                          task_type="CAUSAL_LM"))
    out = weights_only(input_ids=IDS).logits
    assert torch.allclose(weights_only.merge_and_unload()(input_ids=IDS).logits, out, atol=1e-5)
