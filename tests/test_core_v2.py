"""Core v2: objectives as compositions with their own arguments, CHORD over a `mix` producer, fields declared by
producers and checked at start-up, token weights from data, plugins and `module:function` names from the CLI."""

from __future__ import annotations

import json
import math
import sys
import textwrap

import pytest
import torch

from mmsft.cli import main
from mmsft.config import ConfigError, load_config
from mmsft.objectives import StepNormalizer, TokenBatch, args_type, get_loss
from mmsft.objectives.hybrid import ChordArgs, chord_mu
from mmsft.train.trainer import Trainer
from tests.test_rl_trainer import _rl_config
from tests.test_trainer import _config, _Probe, _trainable_changed


# ---- CHORD ---------------------------------------------------------------------------------------------------------
def _chord_batch(step: int = 0) -> TokenBatch:
    logp = torch.log(torch.tensor([[1.5, 0.5], [0.5, 0.25]])).requires_grad_(True)
    mask = torch.ones(2, 2, dtype=torch.bool)
    expert = torch.tensor([0.0, 1.0])
    rows = {"policy": StepNormalizer.combine([mask & torch.tensor([[True], [False]])]),
            "expert": StepNormalizer.combine([mask & torch.tensor([[False], [True]])])}
    return TokenBatch(logp=logp, loss_mask=mask, old_logp=torch.zeros(2, 2), advantages=torch.tensor([1.0, 0.0]),
                      expert_mask=expert, row_normalizers=rows, step=step,
                      normalizer=StepNormalizer.combine([mask]))


def test_chord_golden_values():
    batch = _chord_batch()
    loss, metrics = get_loss("chord").fn(batch, ChordArgs())  # CHORD-φ defaults: μ = 0.1, φ on, clip 0.2
    policy = (-1.2 - 0.5) / 2  # ratios 1.5 (clipped to 1.2) and 0.5 with A = 1, token-mean over the policy row
    expert = -(0.25 * math.log(0.5) + 0.1875 * math.log(0.25)) / 2  # φ(0.5) = 0.25, φ(0.25) = 0.1875
    assert loss.item() == pytest.approx(0.9 * policy + 0.1 * expert, abs=1e-6)
    assert metrics["chord/mu"] == pytest.approx(0.1)
    loss.backward()
    # expert token gradient: −μ·φ(p)/N_expert; the clipped policy token has none, the other −(1−μ)·A·r/N_policy
    expected = [0.0, -0.9 * 0.5 / 2, -0.1 * 0.25 / 2, -0.1 * 0.1875 / 2]
    assert batch.logp.grad.flatten().tolist() == pytest.approx(expected, abs=1e-6)
    plain, _ = get_loss("chord").fn(_chord_batch(), ChordArgs(phi=False))
    assert plain.item() == pytest.approx(0.9 * policy + 0.1 * -(math.log(0.5) + math.log(0.25)) / 2, abs=1e-6)


def test_chord_mu_schedule_values():
    args = ChordArgs(mu_peak=0.5, mu_valley=0.02, mu_warmup_steps=2, mu_decay_steps=4)
    expected = {0: 0.0, 1: 0.25, 2: 0.5, 3: 0.02 + 0.48 * 0.5 * (1 + math.cos(math.pi / 4)), 4: 0.26, 6: 0.02, 10: 0.02}
    for step, mu in expected.items():
        assert chord_mu(step, args) == pytest.approx(mu), step
    assert chord_mu(7, ChordArgs()) == pytest.approx(0.1)  # CHORD-φ: constant


def test_chord_without_rows_of_a_type_contributes_zero_not_nan():
    batch = _chord_batch()
    batch.expert_mask = torch.zeros(2)
    batch.row_normalizers = {}
    loss, _ = get_loss("chord").fn(batch, ChordArgs())
    assert torch.isfinite(loss)


class _Recorder(Trainer):
    """Records every TokenBatch the objective sees."""

    def _setup(self) -> None:
        super()._setup()
        self.seen: list[TokenBatch] = []
        objective = self.objective

        def record(batch):
            self.seen.append(batch)
            return objective(batch)

        self.objective = record


def test_mix_batches_carry_expert_mask_to_chord(tiny_models, text_dataset, tmp_path):
    cfg = _rl_config(tiny_models["text"], text_dataset, tmp_path / "run", "algorithm=chord",
                     f"mix.expert_path={text_dataset}", "mix.expert_per_step=2", "train.max_steps=2",
                     "objective.args.mu_peak=0.5", "objective.args.mu_valley=0.5")
    assert cfg.stage == "mix"
    trainer = _Recorder(cfg)
    trainer.train()
    masks = torch.cat([b.expert_mask for b in trainer.seen])
    assert set(masks.tolist()) == {0.0, 1.0}
    assert all(b.row_normalizers for b in trainer.seen)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["train/chord/mu"] == pytest.approx(0.5) and "train/chord/expert_nll" in records[0]


def test_objective_needs_a_field_the_stage_does_not_provide(tiny_models, text_dataset, tmp_path):
    cfg = _rl_config(tiny_models["text"], text_dataset, tmp_path / "run", "objective.name=chord")
    with pytest.raises(ConfigError, match=r"needs the TokenBatch field 'expert_mask'.*stage 'rl' does not provide"):
        Trainer(cfg)


# ---- token weights from data ----------------------------------------------------------------------------------------
def _weighted_copy(src, dst, **fields):
    rows = [json.loads(x) for x in src.read_text().splitlines()]
    dst.write_text("".join(json.dumps({**row, **fields}) + "\n" for row in rows))
    return dst


def test_token_weights_from_data_reach_the_sft_loss(tiny_models, text_dataset, tmp_path):
    zero = _weighted_copy(text_dataset, tmp_path / "zero.jsonl", weight=0.0)
    trainer = _Probe(_config(tiny_models["text"], zero, tmp_path / "zero"))
    trainer.train()
    changed, _ = _trainable_changed(trainer, trainer.before)
    assert not changed, "weight 0 on every sample must leave the model unchanged"
    half = _weighted_copy(text_dataset, tmp_path / "half.jsonl", weight=0.5)
    recorder = _Recorder(_config(tiny_models["text"], half, tmp_path / "half"))
    recorder.train()
    batch = recorder.seen[0]
    assert batch.token_weights is not None
    assert batch.token_weights[batch.loss_mask].unique().tolist() == [0.5]


def test_token_weights_must_match_the_target_length(tiny_models, text_dataset, tmp_path):
    bad = _weighted_copy(text_dataset, tmp_path / "bad.jsonl", token_weights=[1.0])
    with pytest.raises(Exception, match=r"'token_weights' has 1 values but the target has \d+ supervised tokens"):
        Trainer(_config(tiny_models["text"], bad, tmp_path / "run")).train()


# ---- plugins and module:function names from the CLI -----------------------------------------------------------------
@pytest.fixture()
def user_package(tmp_path, monkeypatch):
    root = tmp_path / "userpkg"
    (root / "my_pkg").mkdir(parents=True)
    (root / "my_pkg" / "__init__.py").write_text("")
    (root / "my_pkg" / "rewards.py").write_text(textwrap.dedent("""
        def exact_match(samples, completions, **_):
            return [float(c.strip() == str(s.answer)) for s, c in zip(samples, completions)]
    """))
    (root / "my_plugin.py").write_text(textwrap.dedent("""
        from mmsft.objectives import get_loss, register_loss

        @register_loss("test_plugin_sft", requires=("logp",))
        def plugin_sft(batch, args):
            loss, metrics = get_loss("sft").fn(batch, args)
            return loss, {**metrics, "plugin_called": 1.0}
    """))
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in ("my_plugin", "my_pkg", "my_pkg.rewards"):
        sys.modules.pop(name, None)


def test_plugin_loss_and_module_function_reward_from_the_cli(tiny_models, text_dataset, tmp_path, user_package):
    common = [f"model.name_or_path={tiny_models['text']}", f"data.train_path={text_dataset}", "train.max_steps=1",
              "train.micro_batch_size=2", "train.progress=false", "train.tensorboard=false"]
    assert main(["train", *common, "plugins=[my_plugin]", "objective.name=test_plugin_sft",
                 f"train.output_dir={tmp_path / 'sft'}"]) == 0
    record = json.loads((tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train/plugin_called"] == 1.0
    assert main(["train", *common, "algorithm=grpo", "rl.rewards=my_pkg.rewards:exact_match", "rl.prompts_per_step=2",
                 "rl.group_size=2", "rl.max_new_tokens=3", f"train.output_dir={tmp_path / 'rl'}"]) == 0
    record = json.loads((tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()[0])
    assert "reward/my_pkg.rewards:exact_match" in record
    with pytest.raises(ConfigError, match="Did you mean 'test_plugin_sft'"):
        load_config(None, ["plugins=[my_plugin]", "objective.name=test_plugin_sfft"])
    with pytest.raises(ConfigError, match="has no attribute 'exact_mtch'"):
        load_config(None, ["rl.rewards=my_pkg.rewards:exact_mtch"])
    with pytest.raises(ConfigError, match="cannot import plugin module 'no_such_plugin'"):
        load_config(None, ["plugins=[no_such_plugin]"])


def test_task_rewards_resolve_through_entry_points_without_importing_tasks():
    """`rl.rewards=puzzle` works from the CLI although mmsft never imports tasks (entry points load on a miss)."""
    from mmsft.rewards import get_reward

    assert callable(get_reward("puzzle")) and callable(get_reward("cls_accuracy"))


def test_component_arguments_are_validated_per_component():
    cfg = load_config(None, ["algorithm=dapo", "objective.args.clip_high=0.3", "rl.advantage_args.eps=1e-4"])
    entry = get_loss(cfg.objective.name)
    assert args_type(entry)(**cfg.objective.args).clip_high == 0.3
    with pytest.raises(ConfigError, match=r"'objective.args.mu_peak': 'ppo_clip' has no argument 'mu_peak'"):
        load_config(None, ["algorithm=dapo", "objective.args.mu_peak=0.3"])
    with pytest.raises(ConfigError, match=r"rl.advantage_args.eps.*expected a number > 0, got 0.0"):
        load_config(None, ["rl.advantage_args.eps=0"])
