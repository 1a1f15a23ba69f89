"""Evaluation instances are disjoint from training instances by construction — by seed range and by content — for
Sokoban levels and General Points hands (data builds and the env tasks' level seeds agree), and for the VGRP
study's test sets (overlap dropped and counted)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from envs.general_points.cards import HandConfig, sample_hand
from envs.sokoban.core import cached_level
from envs.sokoban.generator import GeneratorConfig
from mmsft.rollout.env_config import EnvConfig
from mmsft.rollout.tasks import make_task
from tasks.puzzles.build import BuildConfig, build_general_points, build_sokoban
from tasks.puzzles.seeds import CONTENT_BUCKETS, SPLIT_BASES, content_split, hand_key, sokoban_key, split_seed
from tasks.vgrp.study import drop_overlap

import tasks.puzzles.env_tasks  # noqa: F401,E402  (registers sokoban, general_points)


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_content_buckets_partition_the_space():
    assert sorted(b for r in CONTENT_BUCKETS.values() for b in r) == list(range(10))
    counts = Counter(content_split(f"k{i}") for i in range(20_000))
    # 8/1/1 of 10 buckets; binomial s.d. of the train share is sqrt(.8*.2/20000) = 0.0028, so 6 s.d. = 0.017
    assert abs(counts["train"] / 20_000 - 0.8) < 0.017 and abs(counts["test"] / 20_000 - 0.1) < 0.013
    assert content_split("abc") == content_split("abc")


def test_sokoban_levels_disjoint_by_content_between_splits():
    gen = GeneratorConfig(dim=(6, 6), num_boxes=1)
    key = lambda s: sokoban_key(cached_level(gen, s))  # noqa: E731
    train = [split_seed("train", 0, i, key) for i in range(1500)]
    test = [split_seed("test", 0, i, key) for i in range(300)]
    assert max(train) < SPLIT_BASES["val"] <= SPLIT_BASES["test"] <= min(test)
    train_levels, test_levels = {key(s) for s in train}, {key(s) for s in test}
    # 6x6 rooms with one box repeat often (seed ranges alone shared about half of the test levels with training)
    assert not train_levels & test_levels and len(test_levels) > 100


def test_builds_and_env_tasks_use_the_same_disjoint_levels(tmp_path, tiny_models):
    from mmsft.models.loading import build_adapter, load_model

    build_sokoban(BuildConfig(world="sokoban", out=tmp_path / "tr", split="train", format="plan", num=200))
    build_sokoban(BuildConfig(world="sokoban", out=tmp_path / "te", split="test", format="plan", num=60))
    train, test = _rows(tmp_path / "tr" / "train.jsonl"), _rows(tmp_path / "te" / "test.jsonl")
    assert not {r["meta"]["level_id"] for r in train} & {r["meta"]["level_id"] for r in test}
    adapter = build_adapter(load_model(str(tiny_models["text"])))
    task = make_task("sokoban", EnvConfig(max_turns=1, task_args={"prompt_style": "compact"}), adapter)
    assert [task.level_seed("train", k) for k in range(5)] == [r["meta"]["level_seed"] for r in train[:5]]
    assert [task.level_seed("test", k) for k in range(5)] == [r["meta"]["level_seed"] for r in test[:5]]

    build_general_points(BuildConfig(world="general-points", out=tmp_path / "gtr", split="train", format="plan",
                                     num=300))
    build_general_points(BuildConfig(world="general-points", out=tmp_path / "gte", split="test", format="plan", num=40))

    def problems(rows):
        return {f"4|24|{sorted(r['answer']['values'])}" for r in rows}

    gtr, gte = _rows(tmp_path / "gtr" / "train.jsonl"), _rows(tmp_path / "gte" / "test.jsonl")
    assert not problems(gtr) & problems(gte)
    gp = make_task("general_points", EnvConfig(mode="single_turn", max_turns=1), adapter)
    assert [gp.level_seed("test", k) for k in range(4)] == [r["meta"]["hand_seed"] for r in gte[:4]]
    ood = make_task("general_points", EnvConfig(mode="single_turn", max_turns=1, task_args={
        "face_values": "face_ood", "force_face_card": True}), adapter)
    cfg = HandConfig(values=ood.variant.cards_verify, force_face_card=True)
    assert all(content_split(hand_key(sample_hand(cfg, ood.level_seed("test", k)))) == "test" for k in range(10))


def test_gp_env_prompt_states_the_scored_face_values(tiny_models):
    from mmsft.models.loading import build_adapter, load_model

    adapter = build_adapter(load_model(str(tiny_models["text"])))
    task = make_task("general_points", EnvConfig(mode="single_turn", max_turns=1, task_args={
        "face_values": "face_ood", "force_face_card": True}), adapter)
    env = task.make_env(1)
    obs, infos = env.reset([task.level_seed("test", 0)], 1)
    prompt = task.observe(env, 0, obs[0], infos[0], 0).text
    assert "'J' counts as 11, 'Q' counts as 12, and 'K' counts as 13" in prompt


def test_sokoban_cot_format_in_the_env_task(tiny_models):
    from mmsft.models.loading import build_adapter, load_model

    adapter = build_adapter(load_model(str(tiny_models["text"])))
    task = make_task("sokoban", EnvConfig(max_turns=2, task_args={"prompt_style": "compact", "format": "cot"}),
                     adapter)
    env = task.make_env(1)
    obs, infos = env.reset([task.level_seed("test", 0)], 1)
    task.begin_episodes(env, obs, infos)
    assert "<think> [thoughts] </think>" in task.observe(env, 0, obs[0], infos[0], 0).text
    with pytest.raises(ValueError, match="format"):
        make_task("sokoban", EnvConfig(mode="single_turn", task_args={"format": "cot"}), adapter)


def test_vgrp_study_drops_and_counts_overlap(tmp_path):
    from tasks.vgrp.dataset import build_dataset

    build_dataset("sudoku", tmp_path / "a", 6, 0, size=4, with_image=False)
    build_dataset("sudoku", tmp_path / "b", 4, 1, size=4, with_image=False)
    a = _rows(tmp_path / "a" / "data.jsonl")
    # plant two training instances in the test file: both are dropped and counted, the rest are kept
    test = tmp_path / "b" / "data.jsonl"
    test.write_text(test.read_text() + json.dumps(a[0]) + "\n" + json.dumps(a[3]) + "\n")
    before = len(_rows(test))
    assert drop_overlap(test, {r["meta"]["hash"] for r in a}) >= 2
    kept = _rows(test)
    assert len(kept) <= before - 2 and not {r["meta"]["hash"] for r in kept} & {r["meta"]["hash"] for r in a}
