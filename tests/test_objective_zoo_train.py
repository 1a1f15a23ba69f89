"""One real optimizer step of every objective-zoo entry through the Trainer on the tiny text model and the tiny VLM:
every trainable parameter must move. Plus the plumbing the entries rely on: ASFT's adapter-disabled reference under
LoRA, the gkd stage's student fraction, the lagged self-teacher's sync, routed multi-teacher distillation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmsft.config import load_config
from mmsft.train.trainer import Trainer
from tests.test_trainer import _Probe, _config, _trainable_changed

FAMILIES = [("text", "text_dataset"), ("qwen2-vl", "mm_dataset")]


@pytest.fixture(scope="module")
def teachers(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """Differently initialised tiny models with the students' tokenizers (the tokenizer depends only on its seed)."""
    from mmsft.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("teachers")
    return {"text": build_tiny("text", root / "text", seed=1), "text2": build_tiny("text", root / "text2", seed=2),
            "qwen2-vl": build_tiny("qwen2-vl", root / "qwen2-vl", seed=1)}


def _with_meta(src: Path, dst: Path, **meta) -> Path:
    """A copy of ``src`` with extra ``meta`` fields, written next to it (media paths stay relative to the data root)
    under a name unique to ``dst``'s test folder."""
    dst = src.parent / f"{dst.parent.name}-{dst.name}"
    rows = [json.loads(x) for x in src.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["meta"] = {**row.get("meta", {}), **{k: (v(i) if callable(v) else v) for k, v in meta.items()}}
    dst.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dst


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _step(model: Path, data: Path, run: Path, *extra: str) -> _Probe:
    trainer = _Probe(_config(model, data, run, "train.torch_threads=1", *extra))
    trainer.train()
    changed, unchanged = _trainable_changed(trainer, trainer.before)
    assert changed and not unchanged, f"parameters did not change: {unchanged[:8]}"
    return trainer


ENTRIES = {
    "asft": ["algorithm=asft"],
    "asft_exact": ["algorithm=asft", "objective.args.topk=0"],
    "otr": ["algorithm=otr"],
    "otr_mc": ["algorithm=otr", "objective.args.mode=mc", "objective.args.num_samples=16"],
    "curio_sft": ["algorithm=curio_sft"],
    "masked_ft": ["algorithm=masked_ft"],
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("family,dataset", FAMILIES)
def test_one_step_changes_every_parameter(tiny_models, request, tmp_path, family, dataset, entry):
    _step(tiny_models[family], request.getfixturevalue(dataset), tmp_path / "run", *ENTRIES[entry])
    assert _records(tmp_path / "run")[0]["train/loss"] != 0


@pytest.mark.parametrize("family,dataset", FAMILIES)
def test_poft_one_step_with_reference_scores_from_meta(tiny_models, request, tmp_path, family, dataset):
    data = _with_meta(request.getfixturevalue(dataset), tmp_path / "scored.jsonl", ref_score=lambda i: -2.0 - i)
    _step(tiny_models[family], data, tmp_path / "run", "algorithm=poft")
    assert 0 < _records(tmp_path / "run")[0]["train/poft/weight"] < 1


def test_poft_without_reference_scores_names_the_sample(tiny_models, text_dataset, tmp_path):
    with pytest.raises(Exception, match=r"sample id 't\d+'.*meta.ref_score"):
        Trainer(_config(tiny_models["text"], text_dataset, tmp_path / "run", "algorithm=poft")).train()


@pytest.mark.parametrize("preset", ["kd_topk", "gkd"])
@pytest.mark.parametrize("family,dataset", FAMILIES)
def test_distillation_one_step(tiny_models, teachers, request, tmp_path, family, dataset, preset):
    extra = [f"algorithm={preset}", f"rl.teacher={teachers[family]}", "rl.max_new_tokens=4"]
    if preset == "gkd":
        extra.append("objective.args.lmbda=1.0")  # every row is a student sample
    _step(tiny_models[family], request.getfixturevalue(dataset), tmp_path / "run", *extra)
    record = _records(tmp_path / "run")[0]
    if preset == "gkd":
        assert record["gkd/student_frac"] == 1.0 and record["train/gkd/jsd"] > 0
    else:
        assert record["train/distill/forward_kl"] > 0


def test_gkd_student_fraction_follows_lambda(tiny_models, teachers, text_dataset, tmp_path):
    cfg = _config(tiny_models["text"], text_dataset, tmp_path / "run", "algorithm=gkd", "train.max_steps=6",
                  "train.micro_batch_size=4", f"rl.teacher={teachers['text']}", "rl.max_new_tokens=2",
                  "objective.args.lmbda=0.0")
    Trainer(cfg).train()
    assert all(r["gkd/student_frac"] == 0.0 for r in _records(tmp_path / "run") if "gkd/student_frac" in r)


def test_asft_with_lora_anchors_to_the_adapter_disabled_network(tiny_models, text_dataset, tmp_path):
    trainer = _Probe(_config(tiny_models["text"], text_dataset, tmp_path / "run", "algorithm=asft", "lora.enabled=true",
                             "lora.r=4", "train.max_steps=3", "objective.args.topk=0"))
    trainer.train()
    records = _records(tmp_path / "run")
    assert records[0]["train/asft/kl_ref"] == pytest.approx(0.0, abs=1e-6)  # B = 0: policy == base exactly
    assert records[-1]["train/asft/kl_ref"] > 1e-6  # the adapters moved away from the base; the anchor sees it
    assert trainer.scorers.ref.context is not None  # the reference is the same network under disable_adapter()


def test_curio_lagged_teacher_syncs_every_k_steps(tiny_models, text_dataset, tmp_path):
    trainer = _Probe(_config(tiny_models["text"], text_dataset, tmp_path / "run", "algorithm=curio_sft",
                             "objective.args.sync_every=2", "train.max_steps=5"))
    trainer.train()
    teacher = trainer.scorers.teacher
    assert teacher.syncs == 2  # before steps 2 and 4 (0-based)
    before = dict(trainer.before)
    name, param = next((n, p) for n, p in teacher.copy.named_parameters() if n in before)
    assert not torch.equal(param.detach().cpu(), before[name])


def test_routed_teachers_score_each_row_with_its_domain_teacher(tiny_models, teachers, text_dataset, tmp_path):
    data = _with_meta(text_dataset, tmp_path / "domains.jsonl", domain=lambda i: "math" if i % 2 else "code")
    routes = tmp_path / "teachers.yaml"
    routes.write_text(f"route_by: meta.domain\nteachers:\n  math: {teachers['text']}\n  code: {teachers['text2']}\n")
    cfg = load_config(None, [f"model.name_or_path={tiny_models['text']}", f"data.train_path={data}",
                             f"train.output_dir={tmp_path / 'run'}", "algorithm=opd", f"rl.teacher={routes}",
                             "rl.prompts_per_step=2", "rl.group_size=2", "rl.max_new_tokens=3",
                             "train.micro_batch_size=4", "train.max_steps=1", "optim.lr=1e-2", "optim.max_grad_norm=0",
                             "train.progress=false", "train.tensorboard=false", "train.resume=never"])
    trainer = _Probe(cfg)
    trainer.train()
    changed, unchanged = _trainable_changed(trainer, trainer.before)
    assert changed and not unchanged
    routed = trainer.scorers.teacher
    samples = trainer.train_samples[:4]
    batch = trainer.adapter.collate([trainer.adapter.encode(s) for s in samples])
    got = routed(batch)
    for row, sample in enumerate(samples):
        own = routed.scorers[sample.meta["domain"]](batch)
        other = routed.scorers["code" if sample.meta["domain"] == "math" else "math"](batch)
        torch.testing.assert_close(got[row], own[row].cpu())
        assert not torch.allclose(got[row][batch.loss_mask[row]], other[row][batch.loss_mask[row]].cpu())
    ids, logp = routed.support(batch, 5)
    direct_ids, direct_logp = routed.scorers[samples[0].meta["domain"]].support(batch, 5)
    torch.testing.assert_close(logp[0], direct_logp[0])
    assert torch.equal(ids[0], direct_ids[0])


def test_routing_file_errors_name_the_problem(tmp_path):
    from mmsft.train.teacher_router import RoutingError, read_routes

    bad = tmp_path / "t.yaml"
    bad.write_text("route_by: domain\nteachers: {a: x}\n")
    with pytest.raises(RoutingError, match=r"t.yaml: 'route_by' must be 'meta.<key>'"):
        read_routes(bad)
    bad.write_text("route_by: meta.domain\nteachers: {}\n")
    with pytest.raises(RoutingError, match="'teachers' must be a non-empty mapping"):
        read_routes(bad)


class _BatchRecorder(Trainer):
    """Records every model batch (tokens, sample ids, producer fields) the policy pass sees."""

    def _token_batch(self, out, batch, *rest):
        self.batches = getattr(self, "batches", []) + [batch]
        return super()._token_batch(out, batch, *rest)


@pytest.mark.parametrize("family,dataset", FAMILIES)
def test_prefix_rft_step_prefixes_demonstrations(tiny_models, request, tmp_path, family, dataset):
    import tests.test_rl_trainer  # noqa: F401  (registers test_text_hash)
    from tests.test_rl_trainer import _rl_config

    cfg = _rl_config(tiny_models[family], request.getfixturevalue(dataset), tmp_path / "run", "algorithm=prefix_rft",
                     "rl.group_size=3", "train.micro_batch_size=6", "train.max_steps=1")
    trainer = _BatchRecorder(cfg)
    before = None

    def snapshot(self=trainer):
        nonlocal before
        before = {n: p.detach().clone() for n, p in self.model.named_parameters()}

    original = trainer._setup
    trainer._setup = lambda: (original(), snapshot())[0]
    trainer.train()
    changed, unchanged = _trainable_changed(trainer, before)
    assert changed and not unchanged
    record = _records(tmp_path / "run")[0]
    assert record["prefix_rft/fraction"] == pytest.approx(0.95)  # step 0: the start of the cosine decay
    assert 0 < record["train/prefix_rft/selected_tokens"] <= record["train/prefix_rft/prefix_tokens"]
    samples = {s.id: s for s in trainer.train_samples}
    prefixed = 0
    for batch in trainer.batches:
        for row in range(len(batch.sample_ids)):
            marks = batch.fields["prefix_mask"][row] > 0
            if not bool(marks.any()):
                continue
            prefixed += 1
            demo_enc = trainer.adapter.encode(samples[batch.sample_ids[row]])
            demo = demo_enc.input_ids[demo_enc.loss_mask]
            head = batch.inputs["input_ids"][row][marks.to(batch.inputs["input_ids"].device)].cpu()
            assert len(head) == min(int(0.95 * len(demo)), len(demo) - 1)
            assert torch.equal(head, demo[: len(head)])  # the prefix is the start of the row's demonstration
    assert prefixed == 2  # one prefixed member in each of the two groups


def test_soft_exit_equals_the_truncated_model(tiny_models, text_dataset):
    """Exit n of the policy pass is exactly the model cut after n layers (shared final norm and head)."""
    import copy

    from mmsft.data.loaders import load_dataset
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.models.logprobs import naive_logprobs
    from mmsft.models.policy import Policy

    loaded = load_model(str(tiny_models["text"]))
    adapter = build_adapter(loaded)
    batch = adapter.collate([adapter.encode(s) for s in load_dataset(str(text_dataset))[:3]])
    model = loaded.model.eval()
    with torch.no_grad():
        out = Policy(model)(batch.inputs, batch.loss_mask, exit_layers=[1, 2])
        cut = copy.deepcopy(model)
        cut.model.layers = cut.model.layers[:1]
        cut.config.num_hidden_layers = 1
        logits = cut(**batch.inputs).logits
    expected = naive_logprobs(logits, batch.inputs["input_ids"], batch.loss_mask)
    torch.testing.assert_close(out.extra["exit_logp"][..., 0], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.extra["exit_logp"][..., 1], out.logp)


@pytest.mark.parametrize("family,dataset", FAMILIES)
def test_soft_one_step(tiny_models, request, tmp_path, family, dataset):
    _step(tiny_models[family], request.getfixturevalue(dataset), tmp_path / "run", "algorithm=soft",
          "objective.args.exits=1,2")
    record = _records(tmp_path / "run")[0]
    assert record["train/soft/nll_exit0"] != record["train/soft/nll_exit1"]


def test_ift_fused_inputs_and_greedy_guesses(tiny_models, text_dataset, mm_dataset):
    """λ = 1 replaces the response inputs by the guesses exactly; λ = 0 is the plain pass (also on the VLM, whose
    images must survive the inputs_embeds path); the guesses are the argmax of the previous position's logits."""
    from mmsft.data.loaders import load_dataset
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.models.logprobs import head_logprobs
    from mmsft.models.policy import Policy, backbone_and_head
    from mmsft.train.scored_fields import policy_argmax

    loaded = load_model(str(tiny_models["text"]))
    adapter = build_adapter(loaded)
    batch = adapter.collate([adapter.encode(s) for s in load_dataset(str(text_dataset))[:3]])
    policy = Policy(loaded.model.eval())
    ids = batch.inputs["input_ids"]
    with torch.no_grad():
        guesses = policy_argmax(policy, batch, "cpu", None)
        logits = loaded.model(**batch.inputs).logits
        expected = torch.where(batch.loss_mask[:, 1:], logits[:, :-1].argmax(-1), torch.full_like(ids[:, 1:], -1))
        assert torch.equal(guesses[:, 1:], expected) and bool((guesses[:, 0] == -1).all())
        swapped = torch.where(guesses >= 0, guesses, ids)
        mixed = policy(batch.inputs, batch.loss_mask, input_mix=(guesses, 1.0)).logp
        backbone, head = backbone_and_head(loaded.model)
        hidden = backbone(input_ids=swapped, attention_mask=batch.inputs["attention_mask"]).last_hidden_state
        torch.testing.assert_close(mixed, head_logprobs(hidden, ids, batch.loss_mask, head).logp, atol=1e-5, rtol=1e-5)
        plain = policy(batch.inputs, batch.loss_mask).logp
        torch.testing.assert_close(policy(batch.inputs, batch.loss_mask, input_mix=(guesses, 0.0)).logp, plain)
    vl = load_model(str(tiny_models["qwen2-vl"]))
    vl_adapter = build_adapter(vl)
    vl_batch = vl_adapter.collate([vl_adapter.encode(s) for s in load_dataset(str(mm_dataset))[:2]])
    vl_policy = Policy(vl.model.eval())
    with torch.no_grad():
        vl_guesses = policy_argmax(vl_policy, vl_batch, "cpu", None)
        torch.testing.assert_close(vl_policy(vl_batch.inputs, vl_batch.loss_mask, input_mix=(vl_guesses, 0.0)).logp,
                                   vl_policy(vl_batch.inputs, vl_batch.loss_mask).logp)


@pytest.mark.parametrize("family,dataset", FAMILIES)
def test_ift_one_step(tiny_models, request, tmp_path, family, dataset):
    _step(tiny_models[family], request.getfixturevalue(dataset), tmp_path / "run", "algorithm=ift")
