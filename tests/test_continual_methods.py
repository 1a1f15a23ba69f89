"""RIF-RFT's rollout filter on a real model (counts, cached rollouts reused, a filter killed mid-way resumed to the
same table), PaST's task-vector arithmetic (exactly the expected tensors change, by the expected amount), and the
other methods end to end at toy size (RIF-RFT, multi-task SFT and RFT, LoRA per stage, PaST)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mmsft.config import load_config_dict
from mmsft.continual import run_experiment
from mmsft.continual.past import TaskVectorError, inject_skill, task_vector
from mmsft.data.selection import RolloutFilter, absolute_media, select_learnable
from mmsft.rewards import register_reward
from tests.test_continual_run import assets, experiment  # noqa: F401  (module fixture)


@register_reward("test_continual_even")
def even_length(samples, completions, **_):
    """A deterministic stand-in verifier: success iff the completion has an even number of characters."""
    return [float(len(c) % 2 == 0) for c in completions]


def _cfg(assets: dict[str, Path], **rl) -> object:
    return load_config_dict({"model": {"name_or_path": str(assets["model"])},
                             "data": {"train_path": str(assets["red"])},
                             "rl": {"rewards": "test_continual_even", "max_new_tokens": 4, **rl},
                             "train": {"seed": 3, "torch_threads": 1}})


RULE = RolloutFilter(k=4, min_successes=1, max_successes=3, chunk=3)


def test_filter_counts_cache_and_resume(assets, tmp_path, monkeypatch):
    cfg = _cfg(assets)
    full = select_learnable(cfg, assets["model"], tmp_path / "a", RULE)
    c = full.counts
    assert c["instances"] == 8 and c["rollouts"] == 32 and full.rollouts_sampled == 32 and not full.reused
    assert c["kept"] + c["incompetent"] + c["mastered"] + c["overlong"] == 8
    assert sum(c["histogram"].values()) == 8 and c["kept"] == sum(v for k, v in c["histogram"].items() if
                                                                   1 <= int(k) <= 3)
    rows = (tmp_path / "a" / "rollouts.jsonl").read_text().splitlines()
    table = {json.loads(r)["id"]: json.loads(r)["rewards"] for r in rows[1:]}
    for sample_id, rewards in table.items():  # the table is what the reward says of the cached texts
        texts = next(json.loads(r)["texts"] for r in rows[1:] if json.loads(r)["id"] == sample_id)
        assert rewards == [float(len(t) % 2 == 0) for t in texts]
    selected = [json.loads(x)["id"] for x in (tmp_path / "a" / "selected.jsonl").read_text().splitlines()]
    assert selected == full.kept and full.kept == [k for k, r in table.items() if 1 <= sum(r) <= 3]

    # a finished selection is reused without loading the model
    import mmsft.models.loading as loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("model loaded for a cached selection"))
    again = select_learnable(cfg, assets["model"], tmp_path / "a", RULE)
    assert again.reused and again.kept == full.kept and again.counts == full.counts
    monkeypatch.undo()

    # a filter killed after its first chunk (one torn line) resamples only the missing chunks, to the same table
    part = tmp_path / "b"
    part.mkdir()
    (part / "rollouts.jsonl").write_text("\n".join(rows[:4]) + "\n" + rows[4][: len(rows[4]) // 2])
    resumed = select_learnable(cfg, assets["model"], part, RULE)
    assert resumed.rollouts_sampled == (8 - 3) * 4 and not resumed.reused
    assert resumed.kept == full.kept and resumed.counts == full.counts
    # same rows in the same order: the resumed cache file equals the uninterrupted one byte for byte
    assert (part / "rollouts.jsonl").read_text() == (tmp_path / "a" / "rollouts.jsonl").read_text()
    resumed_table = {json.loads(r)["id"]: json.loads(r)["rewards"]
                     for r in (part / "rollouts.jsonl").read_text().splitlines()[1:]}
    assert resumed_table == table

    # another rule (k) or another model invalidates the cache: everything is sampled again
    other = select_learnable(cfg, assets["model"], tmp_path / "a", RolloutFilter(k=2, max_successes=2, chunk=3))
    assert other.rollouts_sampled == 16 and not other.reused


def test_absolute_media_rewrites_only_relative_media(tmp_path):
    row = {"messages": [{"role": "user", "content": [{"type": "image", "image": "images/a.png"},
                                                     {"type": "video", "video": "/abs/v.mp4"},
                                                     {"type": "image", "image": "file:///x.png"},
                                                     {"type": "text", "text": "images/not-media.png"}]}]}
    out = absolute_media(row, tmp_path)
    parts = out["messages"][0]["content"]
    assert parts[0]["image"] == str((tmp_path / "images" / "a.png").resolve())
    assert parts[1]["video"] == "/abs/v.mp4" and parts[2]["image"] == "file:///x.png"
    assert parts[3]["text"] == "images/not-media.png"


# ---------------------------------------------------------------------------------------------- PaST
def test_past_vector_changes_exactly_the_expected_tensors(tmp_path):
    from mmsft.models.tiny import build_tiny

    sft = build_tiny("text", tmp_path / "sft", seed=0)
    target = build_tiny("text", tmp_path / "target", seed=1)
    rl = tmp_path / "rl"
    shutil.copytree(sft, rl)
    weights = load_file(str(sft / "model.safetensors"))
    names = sorted(weights)
    touched = [n for n in names if n.endswith("mlp.up_proj.weight")][:1] + [n for n in names if "norm" in n][:1]
    assert len(touched) == 2
    changed = dict(weights)
    for n in touched:
        changed[n] = weights[n] + torch.linspace(-1.0, 1.0, weights[n].numel()).reshape(weights[n].shape)
    save_file(changed, str(rl / "model.safetensors"), metadata={"format": "pt"})

    out = inject_skill(target, rl, sft, 0.5, tmp_path / "injected")
    before, after = load_file(str(target / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert sorted(after) == names
    differs = [n for n in names if not torch.equal(before[n], after[n])]
    assert differs == sorted(touched)  # only the tensors the skill vector touches
    for n in touched:
        expected = before[n].float() + 0.5 * (changed[n].float() - weights[n].float())
        assert torch.allclose(after[n].float(), expected, atol=1e-6, rtol=0)
    assert (out / "config.json").read_text() == (target / "config.json").read_text()
    assert (out / "tokenizer.json").is_file()
    vector = task_vector(rl, sft)
    assert all(torch.count_nonzero(vector[n]) == 0 for n in names if n not in touched)


def test_past_refuses_different_architectures(tmp_path):
    from mmsft.models.tiny import build_tiny

    a = build_tiny("text", tmp_path / "a", seed=0)
    b = build_tiny("text", tmp_path / "b", seed=0, hidden_size=32)
    with pytest.raises(TaskVectorError, match="shape"):
        task_vector(a, b)


# ---------------------------------------------------------------------------------------------- other methods
def test_rif_multitask_lora_and_past_end_to_end(assets, tmp_path):  # noqa: F811
    methods = [{"name": "rif", "method": "rif_rft", "k": 4, "max_successes": 3},
               {"name": "joint", "method": "multitask"},
               {"name": "lora", "method": "sft_lora", "r": 4},
               {"name": "past", "method": "past", "scale": 0.5}]
    doc = experiment(assets, tmp_path / "run", methods=methods, steps=2)
    for task in doc["tasks"]:
        task["reward"] = "test_continual_even"
    result = run_experiment(doc, quiet=True)
    runs = {r["method"]: r for r in result.results["runs"]}
    # RIF-RFT: the filter ran before each RL stage; its counts are logged; an empty selection skips the stage
    for name, index in (("red", 1), ("blue", 2)):
        selection = runs["rif"]["log"][name]["selection"]
        assert selection["instances"] == 8 and selection["rollouts"] == 32
        assert selection["kept"] + selection["incompetent"] + selection["mastered"] == 8
        trained = "train" in runs["rif"]["log"][name]
        assert trained == (selection["kept"] > 0) and ("skipped" in runs["rif"]["log"][name]) != trained
        assert (tmp_path / "run" / "runs" / "rif" / "seed0" / "selection" / f"{index}-{name}" /
                "selected.jsonl").is_file()
    # multi-task: one joint stage on the union of both tasks
    assert runs["joint"]["rows"] == ["start", "joint"] and runs["joint"]["joint"]
    joint = [json.loads(x) for x in (tmp_path / "run" / "runs" / "joint" / "seed0" / "data" /
                                     "joint.jsonl").read_text().splitlines()]
    assert len(joint) == 16 and joint[0]["id"] == "red:red0" and joint[8]["meta"]["continual_task"] == "blue"
    assert runs["joint"]["log"]["joint"]["train"]["steps"] == 4  # the sum of the tasks' steps
    # LoRA per stage: each stage's adapter is merged before the next stage
    lora = tmp_path / "run" / "runs" / "lora" / "seed0" / "stages"
    assert (lora / "1-red" / "merged" / "config.json").is_file() and (lora / "2-blue" / "merged").is_dir()
    # PaST: an RL run on the source task; the target's model is its SFT model + 0.5 · (θ_RL − θ_SFT)
    past = tmp_path / "run" / "runs" / "past" / "seed0"
    injected = past / "stages" / "2-blue" / "past"
    assert runs["past"]["log"]["blue"]["past_injection"]["model"] == str(injected)
    assert runs["past"]["log"]["red"]["past_rl"]["rollouts"] > 0
    sft_red = load_file(str(past / "stages" / "1-red" / "final" / "model.safetensors"))
    rl_red = load_file(str(past / "past" / "red-rl" / "final" / "model.safetensors"))
    sft_blue = load_file(str(past / "stages" / "2-blue" / "final" / "model.safetensors"))
    out = load_file(str(injected / "model.safetensors"))
    for name in out:
        expected = sft_blue[name].float() + 0.5 * (rl_red[name].float() - sft_red[name].float())
        assert torch.allclose(out[name].float(), expected, atol=1e-6, rtol=0)
    state = json.loads((past / "pipeline_state.json").read_text())
    assert state["evals"]["blue/blue"]["model"] == str(injected)  # the injected model is the one evaluated
    assert result.results["summary"]["past"]["bwt"]["n"] == 1


def test_joint_rl_rows_carry_their_task_reward(assets, tmp_path):  # noqa: F811
    """Multi-task RL: the joint rows name their task's reward; ``continual_task_reward`` scores each row with it."""
    from types import SimpleNamespace

    from mmsft.continual.hooks import JointDataHook
    from mmsft.continual.rewards import continual_task_reward
    from mmsft.data.loaders import load_dataset

    tasks = [SimpleNamespace(name="red", data=str(assets["red"]), reward="test_continual_even"),
             SimpleNamespace(name="blue", data=str(assets["blue"]), reward="cls_accuracy")]
    cfg = load_config_dict({})
    JointDataHook(tasks, tmp_path / "joint.jsonl", with_rewards=True).before(None, None, cfg)
    assert cfg.data.media_roots == [str(assets["red"].parent.resolve())]
    samples = load_dataset(str(tmp_path / "joint.jsonl"))
    assert [s.meta["continual_reward"] for s in samples] == ["test_continual_even"] * 8 + ["cls_accuracy"] * 8
    completions = ["blue", "red", "abc", "blue"] * 4
    values = continual_task_reward(samples, completions)
    assert values == [float(len(c) % 2 == 0) for c in completions[:8]] + \
        [float(c == "blue") for c in completions[8:]]
    with pytest.raises(ValueError, match="no meta.continual_reward"):
        continual_task_reward(load_dataset(str(assets["red"])), ["x"] * 8)
