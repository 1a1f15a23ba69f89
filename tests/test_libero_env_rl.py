"""VLA on LIBERO through the agent loop (needs the ``[libero]`` extra): one GRPO step, one on-policy distillation
step with the oracle-derived teacher, and one exact-reverse-KL step to the same teacher. Every sampled token is an
action token, the teacher values are recorded per action token, and every step changes the parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("robosuite", reason="needs the [libero] extra (scripts/install_libero.sh)")
pytest.importorskip("libero.libero", reason="needs the [libero] extra (scripts/install_libero.sh)")

from mmsft.config import load_config  # noqa: E402
from mmsft.models.action_tokenizer import ActionTokenizer  # noqa: E402
from mmsft.rollout import engine as engine_module  # noqa: E402
from mmsft.train.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.libero

COMMON = ["task=libero", "plugins=[tasks.libero.env_task]", "env.concat_turns=false", "env.max_turns=2",
          "env.eval_episodes=0", "env.log_media=1", "env.task_args={task_ids: [0], image_size: 64, chunk: 1, "
          "teacher_sigma_bins: 2.0, oracle_shaping: 1.0}", "rl.group_size=2", "rl.prompts_per_step=1",
          "train.max_steps=1",
          "train.micro_batch_size=4", "train.progress=false", "train.tensorboard=false", "train.torch_threads=1",
          "optim.lr=1e-3", "data.max_length=2048"]


@pytest.fixture()
def sampled(monkeypatch):
    """Every rollout the engine returns during the run."""
    seen = []
    original = engine_module.HFGenerateEngine.generate

    def recording(self, prompts, params):
        rollouts = original(self, prompts, params)
        seen.extend(rollouts)
        return rollouts

    monkeypatch.setattr(engine_module.HFGenerateEngine, "generate", recording)
    return seen


def _train(tiny_models, tmp_path, name: str, extra: list[str]) -> tuple[dict, dict]:
    model = tiny_models["vla"]
    cfg = load_config(None, [f"model.name_or_path={model}", f"train.output_dir={tmp_path / name}", *COMMON, *extra])
    result = Trainer(cfg).train()
    before = load_file(str(model / "model.safetensors"))
    after = load_file(str(result.final_model_dir / "model.safetensors"))
    return before, after


def _changed(before: dict, after: dict) -> float:
    return max(float((before[k].float() - after[k].float()).abs().max()) for k in before)


@pytest.mark.parametrize("name,extra", [
    ("grpo", ["algorithm=grpo", "objective.kl.coef=0"]),
    ("opd", ["algorithm=opd", "rl.teacher=tasks.libero.teacher:recorded_teacher"]),
    ("exact_kl", ["rl.advantage=grpo", "objective.name=reverse_kl_exact",
                  "rl.teacher=tasks.libero.teacher:recorded_teacher"]),
])
def test_vla_steps_in_libero(tiny_models, tmp_path, sampled, name, extra):
    # opd / exact_kl can only run on the values recorded during the episodes: RecordedTeacher raises if scored
    before, after = _train(tiny_models, tmp_path, name, extra)
    action_ids = set(ActionTokenizer.load(tiny_models["vla"]).action_token_ids.tolist())
    assert sampled, "no rollouts were generated"
    for rollout in sampled:
        assert len(rollout.completion_ids) == 7 and set(rollout.completion_ids.tolist()) <= action_ids
    assert _changed(before, after) > 0, f"{name}: parameters did not change"
    assert list((tmp_path / name / "rollouts").glob("env-000000*.gif")), "no episode GIF was written"


def test_oracle_teacher_distribution(tiny_models):
    from tasks.libero.teacher import OracleBinTeacher

    tokenizer = ActionTokenizer.load(tiny_models["vla"])
    teacher = OracleBinTeacher(tokenizer, sigma_bins=2.0)
    action = np.array([[0.0, 0.5, -0.5, 1.0, -1.0, 0.25, -1.0]])
    logp = teacher.log_probs(action)
    assert logp.shape == (7, tokenizer.n_bins)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(7), atol=1e-5)
    assert torch.equal(logp.argmax(-1), torch.as_tensor(tokenizer.to_bins(action).reshape(-1)))
    with pytest.raises(ValueError, match="sigma_bins"):
        OracleBinTeacher(tokenizer, sigma_bins=0)


def test_libero_batch_groups_and_abandoned_episodes():
    """LiberoBatch over real worker processes (the fake env of test_libero_vector): groups share an init state, an
    episode cut short by the agent's turn budget is recorded as abandoned, and ends report the final observation."""
    from envs.libero.vector import LiberoVectorEnv
    from mmsft.rollout.envs import LiberoBatch
    from tasks.libero.env_task import LiberoTask

    vec = LiberoVectorEnv(4, env_entry_point="tests.test_libero_vector:FakeEnv", env_kwargs={"mode": "ok"})
    try:
        batch = LiberoBatch(vec, LiberoTask.episode_of)
        observations, _ = batch.reset([2000, 3001], 2)
        assert [o["instruction"] for o in observations] == ["task 2", "task 2", "task 3", "task 3"]
        batch.step([np.zeros(7)] * 4)
        observations, _ = batch.reset([4000, 5000], 2)  # the first episodes are still running: abandoned
        assert sum(r.reason.startswith("abandoned") for r in vec.results) == 4
        assert [o["instruction"] for o in observations] == ["task 4"] * 2 + ["task 5"] * 2
        for _ in range(3):
            result = batch.step([np.zeros(7)] * 4)
            assert not result.terminated.any()
        result = batch.step([np.zeros(7)] * 4)  # the fake episodes end after 4 steps; even init states succeed
        assert result.terminated.all() and all(info["success"] for info in result.infos)
        assert all(o is not None and float(o["proprio"][0]) == 4.0 for o in result.observations)
        with pytest.raises(ValueError, match="steps every running episode"):
            batch.step([np.zeros(7)] * 4)
    finally:
        vec.close()
