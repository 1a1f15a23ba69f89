"""LfU (arXiv 2511.13052): golden loss, the SAM-style perturbed consistency checked against the released procedure
(perturb the parameters in place, forward, backward at the perturbed point), the producer's auxiliary batch, and one
real optimizer step on the tiny text model and the tiny Qwen2-VL."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mmsft.models.adapters import ModelBatch
from mmsft.models.loading import load_model
from mmsft.models.policy import Policy, backbone_and_head
from mmsft.objectives import TokenBatch, get_loss
from mmsft.objectives.lfu import LfuArgs, LfuConsistency, select_layers
from tests.test_objective_zoo_train import FAMILIES, _step
from tests.test_objectives import MASK, P


def test_lfu_loss_golden() -> None:
    mse = torch.tensor([[0.5, 1.0, 2.0, 9.0], [4.0, 0.0, 9.0, 9.0]])
    batch = TokenBatch(logp=P.log(), loss_mask=MASK, extras={"lfu_mse": mse * MASK})
    loss, metrics = get_loss("lfu").fn(batch, LfuArgs(lam=2.0))
    ce = -(math.log(0.5) + math.log(0.25) + math.log(0.8) + math.log(0.1) + math.log(0.9)) / 5
    assert loss.item() == pytest.approx(ce + 2.0 * (0.5 + 1.0 + 2.0 + 4.0 + 0.0) / 5, rel=1e-6)
    assert loss.item() == pytest.approx(3.942106, abs=1e-5)
    assert metrics["lfu/consistency_mse"] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="lfu_mse"):
        get_loss("lfu").fn(TokenBatch(logp=P.log(), loss_mask=MASK), LfuArgs())


def test_select_layers() -> None:
    assert select_layers("", 3) == [0, 1, 2]
    assert select_layers("2, 0,2", 3) == [0, 2]
    assert select_layers([1], 3) == [1]
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        select_layers("3", 3)
    with pytest.raises(ValueError, match="not layer indices"):
        select_layers("1,x", 3)


def _batch(vocab: int, seed: int, rows: int = 3, length: int = 7) -> ModelBatch:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (rows, length), generator=g)
    mask = torch.zeros(rows, length, dtype=torch.bool)
    mask[:, 3:] = True
    mask[0, -1] = False
    return ModelBatch({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, mask, [f"s{i}" for i in range(rows)])


def _mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum()


def test_consistency_matches_the_released_perturb_in_place_procedure(tiny_models) -> None:
    """Released code: grad of CE on x_aux → params += α·g/‖g‖ in place → forward x → MSE(h', sg h) backward (the
    gradient at the perturbed point). Ours: functional_call with p + sg(δ). Same value, same gradient."""
    args = LfuArgs(alpha=0.5)
    ours = load_model(str(tiny_models["text"])).model.float()
    theirs = load_model(str(tiny_models["text"])).model.float()
    vocab = ours.config.vocab_size
    x, aux = _batch(vocab, 0), _batch(vocab, 1)
    mask = x.loss_mask.float()

    out = Policy(ours)(x.inputs, x.loss_mask, hidden_fn=LfuConsistency(aux, args))
    value = _mean(out.extra["lfu_mse"], mask)
    value.backward()
    grads = {n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None}

    policy = Policy(theirs)
    backbone, _ = backbone_and_head(theirs)
    clean = [h.detach() for h in backbone(**x.inputs, output_hidden_states=True).hidden_states]
    ce = -_mean(policy(aux.inputs, aux.loss_mask).logp, aux.loss_mask.float())
    ce.backward()
    params = dict(theirs.named_parameters())
    g = {n: p.grad.clone() for n, p in params.items() if p.grad is not None}
    norm = math.sqrt(sum(float(v.pow(2).sum()) for v in g.values()))
    theirs.zero_grad(set_to_none=True)
    with torch.no_grad():
        for n, v in g.items():
            params[n].add_(args.alpha * v / norm)
    moved = backbone(**x.inputs, output_hidden_states=True).hidden_states
    per_token = torch.stack([(m - c).pow(2).mean(-1) for m, c in zip(moved, clean)]).mean(0)
    reference = _mean(per_token, mask)
    reference.backward()

    # the two routes round δ = α·g/‖g‖ differently (scale first vs divide last: ~1 float32 ulp of δ), hence rel 1e-5
    assert value.item() > 0
    assert value.item() == pytest.approx(reference.item(), rel=1e-5)
    assert float(out.extra["lfu_delta_norm"]) == pytest.approx(args.alpha, rel=1e-5)
    assert grads.keys() == {n for n, p in params.items() if p.grad is not None}
    for name, grad in grads.items():
        torch.testing.assert_close(grad, params[name].grad, rtol=1e-5, atol=1e-7, msg=name)


def test_zero_step_gives_zero_consistency(tiny_models) -> None:
    model = load_model(str(tiny_models["text"])).model.float()
    x, aux = _batch(model.config.vocab_size, 0), _batch(model.config.vocab_size, 1)
    out = Policy(model)(x.inputs, x.loss_mask, hidden_fn=LfuConsistency(aux, LfuArgs(alpha=0.0)))
    assert float(out.extra["lfu_mse"].detach().abs().max()) == 0.0


@pytest.mark.parametrize("family,dataset", FAMILIES)
def test_lfu_one_step_changes_every_parameter(tiny_models, request, tmp_path, family, dataset):
    trainer = _step(tiny_models[family], request.getfixturevalue(dataset), tmp_path / "run", "algorithm=lfu")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train/lfu/consistency_mse"] > 0
    assert record["train/lfu/delta_norm"] == pytest.approx(0.1, rel=1e-4)  # α of the preset
    assert trainer.producer.aux_batch


def test_aux_batch_is_seeded_by_step_and_leaves_the_data_position(tiny_models, text_dataset, tmp_path):
    trainer = _step(tiny_models["text"], text_dataset, tmp_path / "run", "algorithm=lfu", "train.grad_accum=2")
    producer = trainer.producer
    state = dict(producer.state_dict())
    first = producer._aux(2, 0).inputs["input_ids"]
    assert torch.equal(first, producer._aux(2, 0).inputs["input_ids"])
    assert producer.state_dict() == state
    producer.state.steps += 1
    draws = [producer._aux(2, 0).inputs["input_ids"], producer._aux(2, 1).inputs["input_ids"]]
    assert any(d.shape != first.shape or not torch.equal(d, first) for d in draws)


def test_lfu_with_lora_perturbs_and_trains_only_the_adapters(tiny_models, text_dataset, tmp_path):
    """The released LoRA mode: δ is over the trainable (adapter) parameters only; two steps (B starts at zero)."""
    trainer = _step(tiny_models["text"], text_dataset, tmp_path / "run", "algorithm=lfu", "lora.enabled=true",
                    "lora.r=4", "train.max_steps=2")
    changed = [n for n, p in trainer.model.named_parameters()
               if not torch.equal(trainer.before[n], p.detach().cpu())]
    assert changed and all("lora_" in n for n in changed)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["train/lfu/consistency_mse"] > 0  # the adapters moved the hidden states under δ
