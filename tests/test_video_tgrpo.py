"""T-GRPO (tasks/video/tgrpo.py): the bonus rule, exact frame permutation of encoded videos, and GRPO steps on the
tiny Qwen2.5-VL with the semantic reward and with T-GRPO (stage video_rl)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmsft.config import ConfigError, load_config_dict
from tasks.video import plugin  # noqa: F401  (registers stage video_rl, rewards, presets)
from tasks.video.recipes import EMBEDDED_BASE, grpo_config, world_data
from tasks.video.semantic import current_scorer
from tasks.video.tgrpo import permute_video_frames, tgrpo_bonus


@pytest.mark.parametrize("ordered, shuffled, expected", [
    ([1.0, 0.0, 1.0, 0.05], [0.5, 0.5], [0.3, 0.0, 0.3, 0.0]),  # p = 0.5125 >= 0.8 * 0.5
    ([1.0, 0.0, 0.0, 0.0], [0.5, 0.5], [0.0] * 4),  # p = 0.25 < 0.4
    ([1.0, 0.0], [1.0, 0.25], [0.3, 0.0]),  # p = 0.5 = 0.8 * 0.625 (boundary: >=)
    ([0.0, 0.0], [0.0, 0.0], [0.0, 0.0]),  # 0 >= 0 but nothing is correct
    ([0.2, 0.1], [1.0], [0.0, 0.0]),
])
def test_bonus_rule(ordered, shuffled, expected):
    assert tgrpo_bonus(ordered, shuffled) == pytest.approx(expected)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_data(tmp_path_factory.mktemp("video"), num_train=7, num_eval=0, seed=0)


def test_frame_permutation_equals_processing_permuted_frames(world):
    from mmsft.data.loaders import load_jsonl
    from mmsft.data.media import MediaBudget, read_video
    from mmsft.data.schema import MediaPolicy
    from mmsft.models.loading import build_adapter, load_model

    sample = load_jsonl(world.rl_jsonl, media=MediaPolicy.from_config([str(world.root)]))[0]
    loaded = load_model(str(EMBEDDED_BASE))
    budget = MediaBudget(video_max_frames=8)
    adapter = build_adapter(loaded, budget)
    encoded = adapter.encode(sample, with_target=False)
    shuffled, perms = permute_video_frames(encoded, loaded.processor, np.random.default_rng(0))
    order = perms[0]
    assert sorted(order) == list(range(8)) and order != list(range(8))
    clip = read_video(sample.media("video")[0], "test", budget)
    prompt = adapter._render(adapter._conversation(sample, False), add_generation_prompt=True)
    from transformers.video_utils import VideoMetadata

    direct = loaded.processor(text=[prompt], videos=[clip.frames[order]], return_tensors="pt", do_sample_frames=False,
                              video_metadata=[VideoMetadata(total_num_frames=8, fps=clip.sample_fps,
                                                            frames_indices=list(range(8)))])
    assert torch.equal(shuffled.mm["pixel_values_videos"], direct["pixel_values_videos"])
    assert not torch.equal(shuffled.mm["pixel_values_videos"], encoded.mm["pixel_values_videos"])
    assert torch.equal(shuffled.input_ids, encoded.input_ids)
    back = permute_video_frames(shuffled, loaded.processor, np.random.default_rng(0))[0]  # same order twice != id
    assert back.mm["pixel_values_videos"].shape == encoded.mm["pixel_values_videos"].shape


def semantic_ungated(samples, completions, **_):
    """The semantic reward with the accuracy gate open (the untrained tiny model is never correct)."""
    return current_scorer().score(samples, completions, [1.0] * len(completions))


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _run(config):
    from mmsft.train.trainer import Trainer

    cfg = load_config_dict(config)
    trainer = Trainer(cfg)
    before = {}
    original = trainer._setup

    def setup():
        original()
        before.update(_snapshot(trainer.model))

    trainer._setup = setup
    trainer.train()
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())]
    return trainer, changed


def test_one_grpo_step_with_the_semantic_reward_changes_parameters(world, tmp_path):
    config = grpo_config(EMBEDDED_BASE, world.rl_jsonl, world.root, tmp_path / "run", max_steps=1)
    config["rl"].update({"rewards": f"{__name__}:semantic_ungated", "max_new_tokens": 24, "log_completions": 100})
    config["optim"]["lr"] = 1e-2
    trainer, changed = _run(config)
    assert any("visual" in n for n in changed) and any("layers" in n for n in changed)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    rewards = [json.loads(x)["reward"] for x in next((tmp_path / "run" / "rollouts").glob("*.jsonl")).read_text()
               .splitlines()]
    assert len(rewards) == 8 and len(set(rewards)) > 1 and all(0 <= r <= 1 for r in rewards)
    assert record["reward/total"] == pytest.approx(np.mean(rewards))
    stats = current_scorer().stats
    assert stats.misses == 2 and stats.hits == 6  # 2 prompts x G = 4: each prompt's frames encoded once


def test_tgrpo_step_samples_a_shuffled_group_and_trains_only_the_ordered(world, tmp_path):
    config = grpo_config(EMBEDDED_BASE, world.rl_jsonl, world.root, tmp_path / "run", semantic=False, tgrpo=True,
                         max_steps=1)
    config["rl"].update({"max_new_tokens": 8, "log_completions": 100})
    from mmsft.train import rl_producer

    calls = []
    original = rl_producer.HFGenerateEngine.generate

    def spy(self, prompts, params):
        calls.append((len(prompts), params.n))
        return original(self, prompts, params)

    rl_producer.HFGenerateEngine.generate = spy
    try:
        trainer, _ = _run(config)
    finally:
        rl_producer.HFGenerateEngine.generate = original
    assert calls == [(2, 4), (2, 2)]  # ordered groups of G = 4, shuffled groups of G / 2
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"tgrpo/ordered_accuracy", "tgrpo/shuffled_accuracy", "tgrpo/bonus_groups", "reward/tgrpo_bonus"} <= \
        set(record)
    assert record["reward/videorft_accuracy"] == pytest.approx(record["tgrpo/ordered_accuracy"])  # raw accuracy
    rows = next((tmp_path / "run" / "rollouts").glob("*.jsonl")).read_text().splitlines()
    assert len(rows) == 8  # the shuffled completions are not trained on (nor logged as rollouts)


def test_stage_args_are_validated():
    base = {"algorithm": "video_r1", "model": {"name_or_path": "x"}, "data": {"train_path": "y"}}
    cfg = load_config_dict(base)
    assert cfg.stage == "video_rl" and cfg.stage_args["tgrpo"] is True and cfg.rl.max_new_tokens == 768
    with pytest.raises(ConfigError, match="stage_args.tgrpo_alpah.*Did you mean 'tgrpo_alpha'"):
        load_config_dict({**base, "stage_args": {"tgrpo_alpah": 0.5}})
    with pytest.raises(ConfigError, match="stage_args"):
        load_config_dict({**base, "stage_args": {"tgrpo_alpha": -1}})
    with pytest.raises(ConfigError, match="'sft' has no argument"):
        load_config_dict({"stage": "sft", "stage_args": {"x": 1}})
