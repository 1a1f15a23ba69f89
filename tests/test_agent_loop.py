"""The agent loop: multi-turn loss masks on real transcripts, shared group levels, counted parse failures, turn and
token budgets, and generation constrained to a vocabulary subset (text model and VLA)."""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np
import pytest
import torch
from PIL import Image

from mmsft.data.schema import Message, Part, Sample
from mmsft.models.loading import build_adapter, load_model
from mmsft.models.policy import Policy
from mmsft.rollout.agent import AgentLoop, episode_metrics
from mmsft.rollout.engine import HFGenerateEngine, Rollout, SamplingParams
from mmsft.rollout.env_config import EnvConfig
from mmsft.rollout.envs import GymBatch, group_seeds, step_chunks
from mmsft.rollout.tasks import ENV_TASKS, make_task

import tasks.puzzles.env_tasks  # noqa: F401,E402  (registers sokoban, general_points)


@pytest.fixture(scope="module")
def text_policy(tiny_models):
    loaded = load_model(str(tiny_models["text"]))
    return loaded, build_adapter(loaded)


class RecordingEngine:
    """The real HF engine, keeping every prompt it was given and every rollout it returned."""

    def __init__(self, model, adapter) -> None:
        self.inner = HFGenerateEngine(lambda: model, adapter)
        self.calls: list[tuple[list, list[Rollout]]] = []

    def generate(self, prompts, params):
        rollouts = self.inner.generate(prompts, params)
        self.calls.append((prompts, rollouts))
        return rollouts


class ScriptedEngine:
    """Answers ``script(slot, turn)`` as if sampled (token ids of the text plus the end-of-turn token)."""

    def __init__(self, adapter, script) -> None:
        self.adapter, self.script = adapter, script
        self.eos = adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def generate(self, prompts, params):
        out = []
        for index, prompt in enumerate(prompts):
            slot, turn = map(int, re.search(r"/ep(\d+)/t(\d+)$", prompt.sample_id).groups())
            text = self.script(slot, turn)
            ids = torch.tensor(self.adapter.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.eos])
            out.append(Rollout(index, prompt, ids, torch.full((len(ids),), -1.0), text, False))
        return out


def _loop(adapter, engine, **cfg) -> tuple[AgentLoop, EnvConfig]:
    env_cfg = EnvConfig(**{"max_new_tokens_per_turn": 6, "task_args": {"dim": [6, 6]}, **cfg})
    task = make_task("sokoban", env_cfg, adapter)
    return AgentLoop(task, adapter, engine, env_cfg, max_length=8192), env_cfg


def test_multi_turn_loss_mask_covers_exactly_the_sampled_tokens(text_policy):
    loaded, adapter = text_policy
    engine = RecordingEngine(loaded.model, adapter)
    loop, _ = _loop(adapter, engine, max_turns=3)
    seeds = [loop.task.level_seed("train", 0)]
    episodes = loop.run(seeds, 2, temperature=1.0, seed=5)
    for slot, episode in enumerate(episodes):
        (sequence,) = episode.sequences
        ids, mask = sequence.encoded.input_ids, sequence.encoded.loss_mask
        answers = [call[1][slot].completion_ids for call in engine.calls if len(call[1]) > slot]
        assert len(answers) == len(episode.turns) == 3  # untrained model: never solves, plays every turn
        # the supervised tokens are exactly the sampled ids, in order, and nothing else
        assert torch.equal(ids[mask], torch.cat(answers))
        assert len(sequence.sampler_logp) == int(mask.sum())
        # each turn was generated from exactly the training sequence's prefix (no re-tokenisation anywhere), and
        # its answer follows that prefix under the mask
        for turn, (prompts, _) in enumerate(engine.calls):
            prompt_ids, answer = prompts[slot].input_ids, answers[turn]
            start = len(prompt_ids)
            assert torch.equal(prompt_ids, ids[:start]) and not bool(mask[start - 1])
            assert torch.equal(ids[start:start + len(answer)], answer) and bool(mask[start:start + len(answer)].all())
        # unsupervised spans are the prompts: turn 0 is the plain encoding; later ones the chat continuation
        first = adapter.encode(Sample("x", [Message("user", (Part("text", text=episode.turns[0].prompt),))]),
                               with_target=False).input_ids
        assert torch.equal(ids[: len(first)], first) and not mask[: len(first)].any()
        text = adapter.decode(ids, skip_special_tokens=False)
        for turn in episode.turns[1:]:
            assert f"<|im_start|>user\n{turn.prompt}<|im_end|>\n<|im_start|>assistant\n" in text


def test_trainer_scores_the_trajectory_as_it_was_sampled(text_policy):
    """Teacher-forced log-probs of the concatenated sequence equal the sampler's (temperature 1, full vocabulary)."""
    loaded, adapter = text_policy
    loop, _ = _loop(adapter, HFGenerateEngine(lambda: loaded.model, adapter), max_turns=3)
    (episode,) = loop.run([loop.task.level_seed("train", 1)], 1, temperature=1.0, seed=2)
    sequence = episode.sequences[0]
    batch = adapter.collate([sequence.encoded])
    with torch.no_grad():
        logp = Policy(loaded.model)(batch.inputs, batch.loss_mask).logp[0][batch.loss_mask[0]]
    # float32 KV-cache decoding vs one full forward: rounding only (|Δ| ≪ 1e-3 for a 2-layer model)
    assert torch.allclose(logp, sequence.sampler_logp, atol=1e-3), (logp - sequence.sampler_logp).abs().max()


def test_groups_share_a_level_and_parse_failures_are_counted(text_policy):
    _, adapter = text_policy
    answers = {0: "<answer>Up</answer>", 1: "I refuse", 2: "<answer>Left || Up</answer>", 3: "<answer>Down</answer>"}
    engine = ScriptedEngine(adapter, lambda slot, turn: answers[slot % 4] if turn == 0 else "<answer>Right</answer>")
    loop, cfg = _loop(adapter, engine, max_turns=2)
    seeds = [loop.task.level_seed("test", k) for k in range(2)]
    episodes = loop.run(seeds, 4)
    assert [e.seed for e in episodes] == group_seeds(seeds, 4, 8)
    assert [e.group for e in episodes] == [0, 0, 0, 0, 1, 1, 1, 1]
    first_prompts = [e.turns[0].prompt for e in episodes]
    assert len(set(first_prompts[:4])) == 1 and len(set(first_prompts[4:])) == 1
    assert first_prompts[0] != first_prompts[4]
    outcomes = [e.turns[0].outcome for e in episodes]
    assert outcomes == ["ok", "unknown_action", "too_many_actions", "ok"] * 2
    metrics = episode_metrics(episodes, "rollout")
    assert metrics["rollout/parse_failures"] == 4
    assert metrics["rollout/parse_unknown_action"] == 2 and metrics["rollout/parse_too_many_actions"] == 2
    # an unparsable answer does not move the player and costs the format penalty (-0.1) on top of nothing
    assert episodes[1].turns[0].reward == pytest.approx(-0.1)
    assert episodes[1].turns[1].prompt == episodes[1].turns[0].prompt


def test_turn_budget_and_token_budget(text_policy):
    _, adapter = text_policy
    engine = ScriptedEngine(adapter, lambda slot, turn: "<answer>wait</answer>")
    loop, _ = _loop(adapter, engine, max_turns=3)
    episodes = loop.run([loop.task.level_seed("test", k) for k in range(3)], 2)
    for episode in episodes:  # an unparsable answer never moves the player, so no level is solved
        assert len(episode.turns) == 3 and episode.end == "turn_budget" and episode.truncated
    # a token budget that fits two turns: the third prompt is not played and not part of the sequence
    one_turn = len(episodes[0].sequences[0].encoded) // 3
    loop, _ = _loop(adapter, engine, max_turns=5, max_episode_tokens=int(2.5 * one_turn))
    (episode,) = loop.run([loop.task.level_seed("test", 0)], 1)
    assert episode.end == "token_budget" and len(episode.turns) == 2
    sequence = episode.sequences[0].encoded
    assert bool(sequence.loss_mask[-1]) and len(sequence) <= int(2.5 * one_turn)


def test_markovian_turns_are_separate_sequences(text_policy):
    _, adapter = text_policy
    engine = ScriptedEngine(adapter, lambda slot, turn: "<answer>Left</answer>")
    loop, _ = _loop(adapter, engine, max_turns=2, concat_turns=False)
    (episode,) = loop.run([loop.task.level_seed("test", 3)], 1)
    assert len(episode.sequences) == len(episode.turns)
    for turn, sequence in zip(episode.turns, episode.sequences):
        e = sequence.encoded
        assert adapter.decode(e.input_ids[e.loss_mask], skip_special_tokens=False) == "<answer>Left</answer><|im_end|>"
        assert turn.prompt in adapter.decode(e.input_ids[~e.loss_mask])


def test_single_turn_general_points(text_policy):
    _, adapter = text_policy
    answers = ['{"formula": "(1+2)*8"}', "no idea", '{"formula": "13*"}']
    engine = ScriptedEngine(adapter, lambda slot, turn: answers[slot % 3])
    cfg = EnvConfig(mode="single_turn", max_turns=4, max_new_tokens_per_turn=32)
    loop = AgentLoop(make_task("general_points", cfg, adapter), adapter, engine, cfg, max_length=4096)
    episodes = loop.run([loop.task.level_seed("test", k) for k in range(3)], 1)
    assert [len(e.turns) for e in episodes] == [1, 1, 1] and all(e.end == "terminated" for e in episodes)
    assert [e.turns[0].outcome for e in episodes] == ["ok", "no_json", "ok"]
    assert episodes[1].episode_return == -3.0  # illegal formula under the paper's reward table


def test_constrained_generation_stays_in_the_subset(text_policy):
    loaded, adapter = text_policy
    subset = tuple(range(300, 340))
    engine = HFGenerateEngine(lambda: loaded.model, adapter)
    prompt = adapter.encode(Sample("p", [Message("user", (Part("text", text="Say something."),))]), with_target=False)
    params = SamplingParams(n=6, max_new_tokens=5, vocab_subset=subset, allow_stop=False, seed=1)
    fixed = engine.generate([prompt], params)
    for rollout in fixed:
        assert len(rollout.completion_ids) == 5 and not rollout.truncated
        assert set(rollout.completion_ids.tolist()) <= set(subset)
    # the recorded sampler log-probs are those of the restricted softmax the trainer computes
    batch = adapter.collate([r.as_encoded() for r in fixed])
    with torch.no_grad():
        scored = Policy(loaded.model)(batch.inputs, batch.loss_mask, vocab_subset=torch.tensor(subset)).logp
    for row, rollout in enumerate(fixed):
        assert torch.allclose(scored[row][batch.loss_mask[row]], rollout.sampler_logp, atol=1e-4)
    stoppable = engine.generate([prompt], SamplingParams(n=6, max_new_tokens=30, vocab_subset=subset, seed=2))
    for rollout in stoppable:
        assert set(rollout.completion_ids.tolist()) <= set(subset) | set(adapter.stop_token_ids)
    with pytest.raises(ValueError, match="allow_stop=False needs a vocab_subset"):
        engine.generate([prompt], SamplingParams(n=1, max_new_tokens=2, allow_stop=False))


def test_vla_rollouts_sample_action_tokens_only_and_score_without_error(tiny_models):
    loaded = load_model(str(tiny_models["vla"]))
    adapter = build_adapter(loaded)
    subset, allow_stop = adapter.sampling_constraints()
    assert not allow_stop and set(subset) == set(adapter.vocab_subset().tolist())
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "frame.png")
        Image.fromarray(image).save(path)
        parts = (Part("image", path=path), Part("text", text="What action should the robot take?"))
        prompt = adapter.encode(Sample("v", [Message("user", parts)]), with_target=False)
    engine = HFGenerateEngine(lambda: loaded.model, adapter)
    n_tokens = adapter.tokens_per_action * 2
    rollouts = engine.generate([prompt], SamplingParams(n=4, max_new_tokens=n_tokens, vocab_subset=subset,
                                                        allow_stop=allow_stop, seed=0))
    for rollout in rollouts:
        assert len(rollout.completion_ids) == n_tokens and set(rollout.completion_ids.tolist()) <= set(subset)
        assert adapter.decode_actions(rollout.completion_ids.reshape(2, -1)).shape == (2, adapter.tokens_per_action)
    batch = adapter.collate([r.as_encoded() for r in rollouts])
    with torch.no_grad():
        logp = Policy(loaded.model)(batch.inputs, batch.loss_mask, vocab_subset=adapter.vocab_subset()).logp
    for row, rollout in enumerate(rollouts):
        assert torch.allclose(logp[row][batch.loss_mask[row]], rollout.sampler_logp, atol=1e-4)
    # a supervised token outside the action vocabulary is a bug upstream: the error names it
    bad = rollouts[0].as_encoded()
    bad.input_ids[-1] = adapter.tokenizer.eos_token_id
    bad_batch = adapter.collate([bad])
    with pytest.raises(ValueError, match=r"token id \d+ at \(row 0, position \d+\) lies outside vocab_subset"):
        Policy(loaded.model)(bad_batch.inputs, bad_batch.loss_mask, vocab_subset=adapter.vocab_subset())


def test_step_chunks_stops_a_slot_at_its_end():
    import gymnasium as gym

    class Counter(gym.Env):
        def reset(self, *, seed=None, options=None):
            self.t = 0
            return {"text": "0"}, {"seed": seed}

        def step(self, action):
            self.t += action
            return {"text": str(self.t)}, 1.0, self.t >= 3, False, {"success": self.t >= 3}

    env = GymBatch(Counter, 3)
    observations, infos = env.reset([7, 9, 11], 1)
    assert [i["seed"] for i in infos] == [7, 9, 11]
    result = step_chunks(env, [[1, 1, 1, 1, 1], None, [2]])
    assert result.rewards.tolist() == [3.0, 0.0, 1.0]  # slot 0 ended after three steps; the rest was dropped
    assert result.terminated.tolist() == [True, False, False] and result.observations[1] is None
    with pytest.raises(ValueError, match="3 seeds x group_size=2"):
        env.reset([1, 2, 3], 2)


def test_unknown_task_and_bad_task_args_name_the_problem(text_policy):
    _, adapter = text_policy
    with pytest.raises(KeyError, match="unknown environment task 'sokoba'.*Did you mean 'sokoban'"):
        make_task("sokoba", EnvConfig(), adapter)
    with pytest.raises(ValueError, match=r"task_args \['grid'\] are not understood by task 'sokoban'"):
        make_task("sokoban", EnvConfig(task_args={"grid": 5}), adapter)
    assert "sokoban" in ENV_TASKS and "general_points" in ENV_TASKS


def test_vgrp_multi_turn_retries_until_correct(text_policy):
    import tasks.vgrp.env_task  # noqa: F401  (registers vgrp and vgrp-<puzzle>)
    from tasks.vgrp.prompts import build_target

    _, adapter = text_policy
    cfg = EnvConfig(mode="multi_turn", max_turns=3, observation="text", max_new_tokens_per_turn=256)
    task = make_task("vgrp-sudoku", cfg, adapter)
    loop = AgentLoop(task, adapter, None, cfg, max_length=8192)
    env = loop.env(2)

    def script(slot: int, turn: int) -> str:
        if turn == 0 and slot == 0:
            return "no grid here"
        game = env.envs[slot]
        return build_target(game.instance, game.instance.solution)

    loop.engine = ScriptedEngine(adapter, script)
    episodes = loop.run([task.level_seed("test", 0)], 2)
    assert [len(e.turns) for e in episodes] == [2, 1] and all(e.success for e in episodes)
    assert episodes[0].turns[0].outcome == "no_json" and "Try again" in episodes[0].turns[1].prompt
    assert episodes[0].turns[1].reward == 1.0 and episodes[0].turns[0].reward == 0.0


def test_the_documented_example_task_runs(text_policy, tmp_path, monkeypatch):
    """docs/adding_an_environment_task.md: its code block registers a working task (higher/lower hints)."""
    import sys
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "adding_an_environment_task.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "doc_guess_task.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    if "guess" not in ENV_TASKS:
        __import__("doc_guess_task")
    _, adapter = text_policy
    cfg = EnvConfig(max_turns=4, max_new_tokens_per_turn=8, task_args={"high": 9})
    task = make_task("guess", cfg, adapter)
    guesses: dict[int, list[int]] = {}

    def script(slot: int, turn: int) -> str:  # binary search on the hints, one garbled answer on slot 1
        low, high = guesses.setdefault(slot, [1, 9])
        if slot == 1 and turn == 0:
            return "hmm"
        return f"My guess is {(low + high) // 2}"

    loop = AgentLoop(task, adapter, ScriptedEngine(adapter, script), cfg, max_length=4096)
    original_observe = task.observe

    def observe(env, slot, observation, info, turn):  # keep the search interval from the env's hint
        text = observation["text"]
        guess = (guesses[slot][0] + guesses[slot][1]) // 2 if slot in guesses else None
        if guess is not None and "higher" in text:
            guesses[slot][0] = guess + 1
        elif guess is not None and "lower" in text:
            guesses[slot][1] = guess - 1
        return original_observe(env, slot, observation, info, turn)

    task.observe = observe
    episodes = loop.run([task.level_seed("test", k) for k in range(3)], 1)
    assert all(e.success for e in episodes if e.slot != 1)
    assert episodes[1].turns[0].outcome == "no_number" and episodes[1].turns[0].reward == pytest.approx(-0.1)
    assert all(len(e.turns) <= 4 for e in episodes)
    sys.modules.pop("doc_guess_task", None)
