"""The robot journey in the simulator (needs the ``[libero]`` extra): oracle demonstrations recorded on demand by the
episode loader -> ``mmsft train`` SFT of the tiny VLA on the episode folder -> ``mmsft eval-libero --policy
mmsft:<final>`` (every executed action is a decoded action token, a video is written) -> one GRPO step and one OPD
step (VLA-folder teacher) from the SFT model through the env loop, each changing the parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

pytest.importorskip("robosuite", reason="needs the [libero] extra (scripts/install_libero.sh)")
pytest.importorskip("libero.libero", reason="needs the [libero] extra (scripts/install_libero.sh)")

from mmsft.models.action_tokenizer import ActionTokenizer  # noqa: E402
from mmsft.rollout import engine as engine_module  # noqa: E402

pytestmark = pytest.mark.libero
RECIPES = Path(__file__).resolve().parents[1] / "tasks" / "libero" / "recipes"
QUIET = ["train.progress=false", "train.tensorboard=false", "train.torch_threads=1"]


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    """Two oracle episodes of libero_spatial task 0 at 32 px, recorded by the loader's ``collect`` option."""
    from tasks.libero.dataset import load_episodes

    root = tmp_path_factory.mktemp("robot") / "demos"
    samples = load_episodes(root, {"chunk": 2, "collect": {"tasks": [0], "episodes_per_task": 2, "workers": 2,
                                                           "image_size": 32}}, "train")
    assert len(samples.episodes) == 2 and len(samples) > 100
    return root


@pytest.fixture(scope="module")
def sft_model(demos, tiny_models, tmp_path_factory) -> Path:
    from mmsft.cli import main

    out = tmp_path_factory.mktemp("robot-sft") / "run"
    code = main(["train", str(RECIPES / "sft.yaml"), f"model.name_or_path={tiny_models['vla']}",
                 f"data.train_path={demos}", "data.loader_args={chunk: 2, cameras: [agentview]}",
                 "data.image_min_pixels=3136", "data.image_max_pixels=3136", "train.max_steps=3",
                 "train.save_steps=0", "train.micro_batch_size=8", f"train.output_dir={out}", *QUIET])
    assert code == 0
    interface = json.loads((out / "final" / "action_tokenizer.json").read_text())["interface"]
    assert interface["chunk"] == 2 and interface["image_size"] == 32 and interface["image_max_pixels"] == 3136
    return out / "final"


@pytest.fixture(scope="module")
def teacher_model(sft_model, tmp_path_factory) -> Path:
    """Another VLA with the student's action statistics and interface (the SFT weights, perturbed)."""
    import shutil

    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("robot-teacher") / "teacher"
    shutil.copytree(sft_model, folder)
    weights = load_file(str(folder / "model.safetensors"))
    generator = torch.Generator().manual_seed(0)
    noisy = {k: v + 0.05 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
             for k, v in weights.items()}
    save_file(noisy, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_eval_libero_runs_the_trained_vla(sft_model, tmp_path, monkeypatch):
    from mmsft.cli import main
    from tasks.libero import vla_policy

    executed, tokens = [], []
    original = vla_policy.VLAPolicy.act_batch

    def recording(self, slots, observations, infos):
        actions = original(self, slots, observations, infos)
        executed.extend(actions)
        tokens.extend(self.executed_tokens[-len(actions):])
        return actions

    monkeypatch.setattr(vla_policy.VLAPolicy, "act_batch", recording)
    out = tmp_path / "eval"
    code = main(["eval-libero", "--policy", f"mmsft:{sft_model}", "--suite", "libero_spatial", "--tasks", "0",
                 "--trials-per-task", "1", "--init-offset", "45", "--max-steps", "10", "--video", "gif",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "results.json").read_text())
    result = summary["results"][0]
    assert result["init_state"] == 45 and len(executed) == result["steps"] > 0
    assert summary["meta"]["image_size"] == 32 and summary["meta"]["cameras"] == "agentview"  # from the model
    assert summary["meta"]["policy_s"] > 0 and summary["meta"]["simulator_s"] > 0
    tok = ActionTokenizer.load(sft_model)
    for action, ids in zip(executed, tokens):
        assert set(ids.tolist()) <= set(tok.action_token_ids.tolist())
        np.testing.assert_array_equal(action, np.clip(tok.decode(ids), -1, 1).astype(np.float32))
    assert list((out / "videos").glob("*.gif"))
    # the model's interface is enforced: another image size is refused before anything runs
    assert main(["eval-libero", "--policy", f"mmsft:{sft_model}", "--tasks", "0", "--image-size", "64",
                 "--out", str(tmp_path / "bad"), "--no-progress"]) == 2


@pytest.mark.parametrize("name,extra", [
    # the untrained policy cannot succeed in 2 turns: the oracle shaping term makes the group's returns differ
    ("grpo", ["algorithm=vla_grpo", "env.episode_reward=return"]),
    ("opd_vla_teacher", ["algorithm=vla_opd_reinforce"]),
])
def test_rl_step_from_the_sft_model(sft_model, teacher_model, tmp_path, monkeypatch, name, extra):
    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    sampled = []
    original = engine_module.HFGenerateEngine.generate

    def recording(self, prompts, params):
        rollouts = original(self, prompts, params)
        sampled.extend(rollouts)
        return rollouts

    monkeypatch.setattr(engine_module.HFGenerateEngine, "generate", recording)
    teacher = f", teacher: {teacher_model}" if name.startswith("opd") else ", oracle_shaping: 1.0"
    cfg = load_config(str(RECIPES / ("grpo.yaml" if name == "grpo" else "opd_oracle.yaml")), [
        f"model.name_or_path={sft_model}", f"train.output_dir={tmp_path / name}", *extra,
        "env.task_args={suite: libero_spatial, task_ids: [0], train_init_states: 20, heldout_init_states: 10"
        f"{teacher}}}", "env.max_turns=2", "rl.group_size=2", "rl.prompts_per_step=1", "train.max_steps=1",
        "train.save_steps=0", "optim.lr=1e-3", *QUIET])
    result = Trainer(cfg).train()
    before = load_file(str(sft_model / "model.safetensors"))
    after = load_file(str(result.final_model_dir / "model.safetensors"))
    assert max(float((before[k] - after[k]).abs().max()) for k in before) > 0, f"{name}: parameters did not change"
    action_ids = set(ActionTokenizer.load(sft_model).action_token_ids.tolist())
    assert sampled and all(len(r.completion_ids) == 14 and set(r.completion_ids.tolist()) <= action_ids
                           for r in sampled)
    metrics = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert any("rollout/success_rate" in m for m in metrics)
    if name == "grpo":
        assert any("rollout/dropped_zero_std_groups" in m for m in metrics)
