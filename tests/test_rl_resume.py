"""RL resume is bit-exact for every preset (β > 0 and several mini-batches included), the KL anchor stays the starting
weights after a resume, and a run killed with SIGKILL at random points — including inside a checkpoint write — and
resumed until it finishes ends with the same weights as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mmsft.algorithms import ALGORITHMS
from mmsft.config import load_config
from mmsft.models.tiny import build_tiny
from mmsft.rewards import register_reward
from mmsft.train.trainer import Trainer
from tests.test_rl_trainer import _rl_config
from tests.test_trainer import _weights

REPO = Path(__file__).resolve().parents[1]
# every preset that trains on a prompt dataset (environment presets — an `env` section — are covered by their tasks)
PRESETS = [name for name in ALGORITHMS.names()
           if ALGORITHMS.get(name).fn["stage"] == "rl" and "env" not in ALGORITHMS.get(name).fn]


@register_reward("test_resume_len")
def _length_reward(samples, completions, **_):
    return [(len(c) * 7 + len(s.id)) % 5 / 4 for s, c in zip(samples, completions)]


def _common(name: str, teacher: Path | None) -> list[str]:
    extra = [f"algorithm={name}", "rl.rewards=test_resume_len", "train.max_steps=4", "rl.prompts_per_step=2",
             "rl.group_size=3", "rl.max_new_tokens=5", "optim.lr=5e-3", "optim.max_grad_norm=1.0"]
    if name in ("grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "dr_grpo", "dapo", "opd", "cispo"):
        extra.append("rl.mini_batches=2")  # several optimizer steps per rollout batch (gspo's preset already has 4)
    if name == "grpo":
        extra.append("objective.kl.coef=0.1")
    if name in ("opd", "srppo"):  # srppo: the teacher slot is the pre-SFT base model
        extra.append(f"rl.teacher={teacher}")
    return extra


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return build_tiny("text", tmp_path_factory.mktemp("teacher"), seed=3)


@pytest.mark.parametrize("name", PRESETS)
def test_rl_resume_is_bit_identical(tiny_models, text_dataset, tmp_path, teacher, name):
    common = _common(name, teacher)
    straight = Trainer(_rl_config(tiny_models["text"], text_dataset, tmp_path / "straight", *common))
    straight.train()
    save = "train.save_steps=4" if name == "gspo" else "train.save_steps=2"  # at a rollout-batch boundary

    class _Crash(Trainer):
        def _step(self, step):
            if step == (4 if name == "gspo" else 2):
                raise KeyboardInterrupt
            return super()._step(step)

    if name == "gspo":  # 4 mini-batches: one rollout batch is the whole run; crash inside it instead
        common = [c for c in common if c != "train.max_steps=4"] + ["train.max_steps=8"]
        straight = Trainer(_rl_config(tiny_models["text"], text_dataset, tmp_path / "straight8", *common))
        straight.train()
    split_dir = tmp_path / "split"
    with pytest.raises(KeyboardInterrupt):
        _Crash(_rl_config(tiny_models["text"], text_dataset, split_dir, *common, save)).train()
    assert list((split_dir / "checkpoints").glob("step-*"))
    Trainer(_rl_config(tiny_models["text"], text_dataset, split_dir, *common, save, "train.resume=auto")).train()
    a, b = _weights(Path(straight.run_dir) / "final"), _weights(split_dir / "final")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{name}: {key} differs after resume"
    if name == "grpo":  # the KL anchor is the starting model, not the resumed checkpoint
        kl = [json.loads(x).get("train/kl") for x in (split_dir / "metrics.jsonl").read_text().splitlines()]
        kl_straight = [json.loads(x).get("train/kl") for x in
                       (Path(straight.run_dir) / "metrics.jsonl").read_text().splitlines()]
        assert kl[-2:] == kl_straight[-2:] and kl[-2] > 0


DRIVER = textwrap.dedent("""
    import os, signal, sys
    kill_step, kill_in_save = int(sys.argv[1]), sys.argv[2] == "save"
    from mmsft.train.trainer import Trainer
    from mmsft.config import load_config
    from tests.test_rl_resume import _length_reward  # registers test_resume_len
    if kill_in_save:  # die after the weights of the checkpoint of step kill_step are written, before it completes
        import transformers
        original = transformers.PreTrainedModel.save_pretrained
        def save_pretrained(self, folder, *a, **k):
            original(self, folder, *a, **k)
            if f"{kill_step:06d}" in str(folder) and "checkpoints" in str(folder):
                os.kill(os.getpid(), signal.SIGKILL)
        transformers.PreTrainedModel.save_pretrained = save_pretrained
    else:
        step_fn = Trainer._step
        def _step(self, step):
            if step == kill_step:
                os.kill(os.getpid(), signal.SIGKILL)
            return step_fn(self, step)
        Trainer._step = _step
    Trainer(load_config(None, sys.argv[3:])).train()
""")


def test_kill_minus_nine_at_random_points_then_resume_matches(tiny_models, text_dataset, tmp_path):
    common = ["algorithm=grpo", f"model.name_or_path={tiny_models['text']}", f"data.train_path={text_dataset}",
              "rl.rewards=test_resume_len", "train.max_steps=6", "rl.prompts_per_step=2", "rl.group_size=3",
              "rl.max_new_tokens=5", "optim.lr=5e-3", "rl.mini_batches=2", "objective.kl.coef=0.1",
              "train.save_steps=2", "train.micro_batch_size=3", "train.progress=false", "train.tensorboard=false",
              "train.torch_threads=1"]
    straight = tmp_path / "straight"
    Trainer(load_config(None, [*common, f"train.output_dir={straight}", "train.resume=never"])).train()
    run = tmp_path / "faulty"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    rng = random.Random(1234)
    # Kill points (steps 0-based; checkpoints after steps 2 and 4): inside the step-2 checkpoint write (nothing intact:
    # restart), at a random step after checkpoint 2, inside the step-4 checkpoint write (fall back to 2), after 4.
    kills = [(2, "save"), (rng.randint(2, 3), "step"), (4, "save"), (5, "step")]
    outcomes = []
    for kill_step, where in kills + [(10_000, "step")]:
        args = [*common, f"train.output_dir={run}", "train.resume=auto"]
        result = subprocess.run([sys.executable, "-c", DRIVER, str(kill_step), where, *args], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=300)
        outcomes.append(result.returncode)
        assert result.returncode in (0, -signal.SIGKILL), result.stderr[-3000:]
    assert outcomes[:-1] == [-signal.SIGKILL] * len(kills) and outcomes[-1] == 0
    a, b = _weights(straight / "final"), _weights(run / "final")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"train/loss"' in x]
    assert steps == sorted(set(steps)) == list(range(1, 7)), "redone steps must not be logged twice"
