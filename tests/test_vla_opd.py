"""VLA on-policy distillation and the batched VLA policy without the simulator: exact and sampled reverse KL agree in
expectation (golden), REINFORCE and PPO-clip OPD agree on-policy, a teacher with other action statistics is refused,
teachers routed by task, and the mmsft: policy (prompt as in training, action tokens only, chunks re-planned)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmsft.models.action_tokenizer import ActionTokenizer, ActionTokenizerMismatchError
from mmsft.objectives import AdvantageInputs, StepNormalizer, TokenBatch, get_advantage, get_loss
from mmsft.objectives.registry import args_type


def _loss(name: str, batch: TokenBatch, **kwargs) -> torch.Tensor:
    entry = get_loss(name)
    return entry.fn(batch, args_type(entry)(**kwargs))[0]


def test_exact_and_sampled_reverse_kl_agree_in_expectation():
    """d/dz KL(softmax(z) || teacher): the exact loss over the vocabulary vs the mean of N sampled REINFORCE terms.
    Tolerance: 5 standard errors per coordinate, from the per-sample gradients' own spread."""
    generator = torch.Generator().manual_seed(0)
    vocab, n = 16, 40_000
    z = torch.randn(vocab, generator=generator, requires_grad=True)
    teacher = torch.log_softmax(torch.randn(vocab, generator=generator), -1)

    student = torch.log_softmax(z, -1)
    exact_batch = TokenBatch(logp=student[:1].unsqueeze(0), loss_mask=torch.ones(1, 1, dtype=torch.bool),
                             logp_dist=student.view(1, 1, vocab), teacher_dist=teacher.view(1, 1, vocab))
    (exact,) = torch.autograd.grad(_loss("reverse_kl_exact", exact_batch), z)
    kl = float((student.exp() * (student - teacher)).sum().detach())
    assert float(_loss("reverse_kl_exact", exact_batch).detach()) == pytest.approx(kl, rel=1e-6)

    actions = torch.multinomial(student.detach().exp(), n, replacement=True, generator=generator)
    logp = torch.log_softmax(z, -1)[actions].unsqueeze(0)
    mask = torch.ones(1, n, dtype=torch.bool)
    sampled_batch = TokenBatch(logp=logp, loss_mask=mask, teacher_logp=teacher[actions].unsqueeze(0),
                               normalizer=StepNormalizer.from_mask(mask))
    (sampled,) = torch.autograd.grad(_loss("opd_reinforce", sampled_batch), z)
    # per-sample gradients (log π(a) − log π_T(a)) (e_a − π): their spread sets the tolerance
    probs = student.detach().exp()
    gap = (student.detach() - teacher)[actions]
    per_sample = gap[:, None] * (torch.nn.functional.one_hot(actions, vocab).float() - probs[None, :])
    stderr = per_sample.std(0) / n ** 0.5
    assert torch.allclose(per_sample.mean(0), sampled, atol=5e-5)  # autograd sums 40k float32 terms
    assert bool((sampled - exact).abs().le(5 * stderr + 5e-5).all()), (sampled - exact) / stderr

    # on-policy (ratio 1) PPO-clip with the frozen opd advantage has the same gradient as REINFORCE
    old = logp.detach()
    advantages = get_advantage("opd").fn(AdvantageInputs(rewards=torch.zeros(1), group_id=torch.zeros(1),
                                                         mask=mask, old_logp=old,
                                                         teacher_logp=teacher[actions].unsqueeze(0)),
                                         args_type(get_advantage("opd"))())
    logp2 = torch.log_softmax(z, -1)[actions].unsqueeze(0)
    ppo_batch = TokenBatch(logp=logp2, loss_mask=mask, old_logp=old, advantages=advantages,
                           normalizer=StepNormalizer.from_mask(mask))
    (ppo,) = torch.autograd.grad(_loss("ppo_clip", ppo_batch), z)
    assert torch.allclose(ppo, sampled, atol=1e-6)


@pytest.fixture(scope="module")
def vla_pair(tiny_models, tmp_path_factory):
    """A student (the tiny VLA with statistics fitted on actions) and a teacher folder with the same statistics."""
    root = tmp_path_factory.mktemp("vla-pair")
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(500, 7))
    folders = {}
    for name in ("student", "teacher", "other"):
        folder = root / name
        shutil.copytree(tiny_models["vla"], folder)
        tok = ActionTokenizer.load(folder)
        tok.fit(actions if name != "other" else actions * 0.5)
        tok.save(folder)
        folders[name] = folder
    return folders


def _ctx(student: str):
    from mmsft.config import load_config
    from mmsft.models.loading import build_adapter, load_model

    loaded = load_model(student)
    adapter = build_adapter(loaded)
    cfg = load_config(None, [f"model.name_or_path={student}"])
    return SimpleNamespace(loaded=loaded, adapter=adapter, cfg=cfg, device="cpu", vocab_subset=adapter.vocab_subset())


def test_teacher_with_other_action_statistics_is_refused(vla_pair):
    from tasks.libero.teacher import load_vla_teacher

    ctx = _ctx(str(vla_pair["student"]))
    with pytest.raises(ActionTokenizerMismatchError, match="low differs in dimensions"):
        load_vla_teacher(str(vla_pair["other"]), ctx)
    scorer, dist = load_vla_teacher(str(vla_pair["teacher"]), ctx)
    assert callable(scorer) and callable(dist)


def test_teachers_routed_by_task(vla_pair):
    from mmsft.data.schema import Message, Part, Sample
    from tasks.libero.teacher import RoutedTeacher, load_vla_teacher, task_of_sample

    ctx = _ctx(str(vla_pair["student"]))
    teacher = load_vla_teacher(str(vla_pair["teacher"]), ctx)
    routed = RoutedTeacher(ctx.adapter, {0: "oracle", 3: str(vla_pair["teacher"])}, {str(vla_pair["teacher"]): teacher})
    frame = np.zeros((16, 16, 3), np.uint8)
    rows = []
    for k, seed in enumerate((3001, 5, 3042)):
        sample = Sample(f"libero/train/seed{seed}/g{k}/ep{k}/t0", [Message("user", (
            Part("image", array=frame + 40 * k), Part("text", text="What action should the robot take to go?")))],
            actions=[[0.1 * k] * 7])
        rows.append(ctx.adapter.encode(sample))
    assert [task_of_sample(r.sample_id) for r in rows] == [3, 0, 3]
    batch = ctx.adapter.collate(rows)
    logp, dist = routed(batch), routed.dist(batch)
    assert logp.shape == batch.loss_mask.shape and dist.shape == (*batch.loss_mask.shape, 256)
    assert float(logp[1].abs().sum()) == 0.0 and float(dist[1].abs().sum()) == 0.0  # oracle row: recorded instead
    direct = teacher[0](ctx.adapter.collate([rows[0], rows[2]]))
    for out_row, direct_row in ((0, 0), (2, 1)):
        got = logp[out_row][batch.loss_mask[out_row]]
        want = direct[direct_row][ctx.adapter.collate([rows[0], rows[2]]).loss_mask[direct_row]]
        assert torch.allclose(got, want, atol=1e-5) and bool((got < 0).all())
    with pytest.raises(ValueError, match="does not name a LIBERO level"):
        task_of_sample("sokoban/train/x")


def test_mmsft_policy_batches_slots_and_replans_every_chunk(vla_pair, tmp_path):
    from tests.test_vla_data import _sft, make_episodes
    from tasks.libero.policies import load_policy

    demos = make_episodes(tmp_path / "demos")
    final = _sft(vla_pair["student"], demos, tmp_path / "run", ["data.loader_args={chunk: 2, proprio: true}"])
    loaded = load_policy(f"mmsft:{final}")
    assert loaded.batched and loaded.requirements == {"image_size": 16, "cameras": ("agentview",), "render": "fast"}
    policy = loaded.factory()
    tok = policy.adapter.action_tokenizer
    rng = np.random.default_rng(0)

    def obs():
        return {"images": {"agentview": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)},
                "proprio": rng.normal(size=8).astype(np.float32), "instruction": "Pick up the bowl."}

    actions = []
    for step in range(5):
        actions += policy.act_batch([0, 2], [obs(), obs()], [{}, {}])
        if step == 2:
            policy.reset_slot(2)  # a new episode on slot 2: its chunk is dropped
    # slot 0 plans at steps 0, 2, 4; slot 2 at 0, 2, 3 (reset), 5 would be next
    assert policy.plans == 6 and len(policy.executed_tokens) == 10
    for action, ids in zip(actions, policy.executed_tokens):
        assert set(ids.tolist()) <= set(tok.action_token_ids.tolist())
        np.testing.assert_allclose(action, np.clip(tok.decode(ids), -1, 1).astype(np.float32))
    with pytest.raises(ValueError, match="not a VLA folder"):
        load_policy(f"mmsft:{tmp_path}")
    with pytest.raises(ValueError, match="no such model folder"):
        load_policy(f"mmsft:{tmp_path / 'nothing'}")


def test_teacher_cross_entropy_gradient_is_student_minus_teacher():
    """DAgger's soft-label loss: d/dz −Σ π_T log softmax(z) = softmax(z) − π_T, exactly."""
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(2, 3, 8, generator=generator, requires_grad=True)
    teacher = torch.log_softmax(torch.randn(2, 3, 8, generator=generator), -1)
    student = torch.log_softmax(z, -1)
    mask = torch.ones(2, 3, dtype=torch.bool)
    batch = TokenBatch(logp=student[..., 0], loss_mask=mask, logp_dist=student, teacher_dist=teacher,
                       normalizer=StepNormalizer.from_mask(mask))
    (grad,) = torch.autograd.grad(_loss("teacher_ce_exact", batch), z)
    assert torch.allclose(grad, (student.detach().exp() - teacher.exp()) / 6, atol=1e-7)


def test_recipes_and_presets_validate(tmp_path):
    from pathlib import Path

    from mmsft.config import load_config
    from mmsft.pipeline.spec import load_pipeline

    recipes = Path(__file__).resolve().parents[1] / "tasks" / "libero" / "recipes"
    expected = {"sft": ("sft", "sft"), "opd_oracle": ("env", "ppo_clip"), "grpo": ("env", "ppo_clip"),
                "opd_teachers": ("env", "ppo_clip")}
    for name, (stage, loss) in expected.items():
        cfg = load_config(str(recipes / f"{name}.yaml"))
        assert (cfg.stage, cfg.objective.name) == (stage, loss), name
        if stage == "env":
            assert cfg.task == "libero" and not cfg.env.concat_turns
    grpo = load_config(str(recipes / "grpo.yaml"))
    assert grpo.rl.dynamic_sampling and grpo.env.episode_reward == "success"
    assert grpo.objective.args["clip_high"] == 0.28
    for preset, loss in (("vla_opd_reinforce", "opd_reinforce"), ("vla_opd_exact", "reverse_kl_exact"),
                         ("vla_dagger", "teacher_ce_exact")):
        cfg = load_config(str(recipes / "opd_oracle.yaml"), [f"algorithm={preset}"])
        assert cfg.objective.name == loss and cfg.rl.teacher == "tasks.libero.teacher:libero_teacher"
    plan = load_pipeline(str(recipes / "pipeline.yaml"))
    assert [s.name for s in plan.stages] == ["sft", "opd", "grpo"]
