"""The compact Sokoban prompt family (builder and env bridge agree), per-level prompt variants in the env, and
per-episode random streams (batch-independent, exactly the softmax)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from envs.sokoban.level import Level
from envs.sokoban.render import render_text
from mmsft.cli import main
from mmsft.rollout.agent import AgentLoop
from mmsft.rollout.engine import HFGenerateEngine, Rollout, SamplingParams, _GumbelRows
from mmsft.rollout.env_config import EnvConfig
from mmsft.rollout.tasks import make_task
from tasks.puzzles.diversity import ACTION_FAMILIES, Variant
from tasks.puzzles.sokoban_compact import object_listing, offset_words
from tasks.puzzles.sokoban_task import build_prompt

import tasks.puzzles.env_tasks  # noqa: F401,E402  (registers sokoban)

ROOM = ["#######",
        "#  .  #",
        "# $@  #",
        "#   * #",
        "#######"]


def test_offsets_and_object_listing():
    assert offset_words(-2, 1) == "2 up 1 right" and offset_words(0, -3) == "3 left" and offset_words(0, 0) == "here"
    one = Level.from_ascii(["######", "#@ $.#", "######"])
    assert object_listing(one) == ["Box: 2 right of you; target: 1 right of it."]
    two = Level.from_ascii(ROOM)  # player (2, 3); boxes (2, 2) and (3, 4) (on a target); targets (1, 3), (3, 4)
    assert object_listing(two) == ["Box 1: 1 left of you; nearest target: 1 up 1 right of it.",
                                   "Box 2: 1 down 1 right of you; on a target."]


def test_compact_prompt_layout_and_vocabularies():
    level = Level.from_ascii(ROOM)
    grid = render_text(level.codes(), Variant().symbols)
    prompt = build_prompt(level, Variant(), "step", "text", grid, style="compact")
    lines = prompt.split("\n")
    assert lines[0] == "Sokoban: push each box onto a target."
    assert lines[2] == "Moves: Up, Down, Left, Right" and "\n".join(lines[3:8]) == grid
    assert lines[-1] == "Next move? <answer> [move] </answer>"
    emoji = ACTION_FAMILIES["emoji"]
    shown = build_prompt(level, Variant(action_family="emoji", actions_shown=emoji, actions_verify=emoji), "plan",
                         "text", grid, style="compact")
    assert f"(where {emoji[0]} is Up" in shown and "joined by '||'" in shown
    image = build_prompt(level, Variant(), "cot", "image", None, style="compact")
    assert grid not in image and "Box" not in image and "<think>" in image  # the image carries the state
    with pytest.raises(ValueError, match="prompt style"):
        build_prompt(level, Variant(), "step", "text", grid, style="fancy")


def test_builder_and_env_bridge_show_the_same_compact_prompt(tmp_path, tiny_models):
    from mmsft.models.loading import build_adapter, load_model

    out = tmp_path / "sok"
    assert main(["data", "build", "sokoban", "--split", "train", "--format", "step", "--prompt-style", "compact",
                 "--num", "3", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert all(r["meta"]["prompt_style"] == "compact" for r in rows)
    adapter = build_adapter(load_model(str(tiny_models["text"])))
    cfg = EnvConfig(max_turns=1, task_args={"prompt_style": "compact"})
    task = make_task("sokoban", cfg, adapter)
    env = task.make_env(1)
    observations, infos = env.reset([rows[0]["meta"]["level_seed"]], 1)
    task.begin_episodes(env, observations, infos)
    assert task.observe(env, 0, observations[0], infos[0], 0).text == rows[0]["messages"][0]["content"][0]["text"]
    assert main(["data", "build", "general-points", "--prompt-style", "compact", "--out", str(tmp_path / "gp")]) == 2


class _Answer:
    """A scripted engine answering every prompt with the verify-vocabulary name of one action."""

    def __init__(self, adapter, action_of_prompt) -> None:
        self.adapter, self.action_of_prompt = adapter, action_of_prompt
        self.eos = adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def generate(self, prompts, params):
        out = []
        for i, prompt in enumerate(prompts):
            text = self.action_of_prompt(self.adapter.tokenizer.decode(prompt.input_ids))
            ids = torch.tensor(self.adapter.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.eos])
            out.append(Rollout(i, prompt, ids, torch.zeros(len(ids)), text, False))
        return out


@pytest.mark.parametrize("families", ["heldout", "fake"])
def test_env_prompt_variants_per_level(tiny_models, families):
    """Held-out vocabularies are announced in the prompt and parsed per slot; a GRPO group shares its level's
    variant; fake variants announce a new vocabulary while the env keeps the base one."""
    from mmsft.models.loading import build_adapter, load_model

    adapter = build_adapter(load_model(str(tiny_models["text"])))
    cfg = EnvConfig(max_turns=1, max_new_tokens_per_turn=8, task_args={
        "prompt_style": "compact", "prompt_diversity": "actions", "families": families, "action_family": "numerical"})
    task = make_task("sokoban", cfg, adapter)

    def answer(prompt: str) -> str:  # the first shown move name, e.g. "1" (numerical Up)
        return "<answer>" + re.search(r"Moves: ([^,]+),", prompt).group(1) + "</answer>"

    loop = AgentLoop(task, adapter, _Answer(adapter, answer), cfg, max_length=4096)
    episodes = loop.run([task.level_seed("test", k) for k in range(3)], 2, temperature=0.0)
    assert all(task._slot_variant(i).actions_shown == ACTION_FAMILIES["numerical"] for i in range(6))
    outcomes = {t.outcome for e in episodes for t in e.turns}
    # heldout: "1" means Up and parses; fake: the env still wants Up/Down/Left/Right, so "1" is an unknown action
    assert outcomes == ({"ok"} if families == "heldout" else {"unknown_action"})
    with pytest.raises(ValueError, match="prompt_style"):
        make_task("sokoban", EnvConfig(task_args={"prompt_style": "nope"}), adapter)


def test_gumbel_rows_sample_the_softmax():
    """Per-row Gumbel-max noise: argmax frequencies equal softmax(scores) (binomial tolerance: 5 s.e.)."""
    scores = torch.tensor([2.0, 1.0, 0.0, -1.0, float("-inf")])
    rows = 20_000
    noisy = _GumbelRows(list(range(rows)))(torch.zeros(rows, 1, dtype=torch.long), scores.expand(rows, -1))
    counts = np.bincount(noisy.argmax(-1).numpy(), minlength=5) / rows
    probs = torch.softmax(scores, -1).numpy()
    assert counts[4] == 0 and np.all(np.abs(counts - probs) < 5 * np.sqrt(probs * (1 - probs) / rows) + 1e-12)


def test_row_seeds_make_completions_batch_independent(tiny_models):
    from mmsft.data.schema import Message, Part, Sample
    from mmsft.models.loading import build_adapter, load_model

    loaded = load_model(str(tiny_models["text"]))
    adapter = build_adapter(loaded)
    prompts = [adapter.encode(Sample(t, [Message("user", (Part("text", text=t),))]), with_target=False)
               for t in ("one", "two words", "three words here")]
    params = SamplingParams(n=2, max_new_tokens=5, row_seeds=(11, 22, 33))
    together = HFGenerateEngine(lambda: loaded.model, adapter, batch_size=4).generate(prompts, params)
    alone = HFGenerateEngine(lambda: loaded.model, adapter, batch_size=1).generate(
        prompts[1:2], SamplingParams(n=2, max_new_tokens=5, row_seeds=(22,)))
    assert [r.completion_ids.tolist() for r in together[2:4]] == [r.completion_ids.tolist() for r in alone]
    assert together[2].completion_ids.tolist() != together[3].completion_ids.tolist()  # copies differ
    with pytest.raises(ValueError, match="row_seeds"):
        HFGenerateEngine(lambda: loaded.model, adapter).generate(prompts, SamplingParams(n=1, row_seeds=(1,)))
