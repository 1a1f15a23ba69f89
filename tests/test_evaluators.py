"""Evaluators: the built-ins on a tiny text model taught to answer "red", argument validation, ``module:function``
evaluators, the puzzle verifier evaluator (Sokoban, General Points, VGRP) and the LIBERO protocol evaluator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mmsft.config import ConfigError, load_config
from mmsft.eval.evaluators import EVALUATORS, EvalContext, EvaluatorError, run_evaluator
from mmsft.registry import RegistryError
from mmsft.rewards import register_reward


def _colour_rows(word: str, n: int = 8) -> list[dict]:
    return [{"id": f"{word}{i}", "messages": [{"role": "user", "content": f"Question {i}: which colour?"},
                                              {"role": "assistant", "content": word}],
             "answer": word, "meta": {"kind": "even" if i % 2 == 0 else "odd"}} for i in range(n)]


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("colours")
    paths = {}
    for word in ("red", "blue"):
        paths[word] = root / f"{word}.jsonl"
        paths[word].write_text("".join(json.dumps(r) + "\n" for r in _colour_rows(word)))
    return paths


@pytest.fixture(scope="module")
def red_model(tmp_path_factory, colours) -> Path:
    """The tiny text model after 8 SFT steps on "answer red" (greedy answers become "red")."""
    from mmsft.models.tiny import build_tiny
    from mmsft.train.trainer import Trainer

    root = tmp_path_factory.mktemp("red-model")
    base = build_tiny("text", root / "base", seed=0)
    cfg = load_config(None, [f"model.name_or_path={base}", f"data.train_path={colours['red']}",
                             f"train.output_dir={root / 'run'}", "train.max_steps=8", "train.micro_batch_size=4",
                             "optim.lr=1e-2", "optim.scheduler=constant", "train.torch_threads=1",
                             "train.progress=false", "train.tensorboard=false", "train.resume=never"])
    return Trainer(cfg).train().final_model_dir


def _ctx(tmp_path: Path, name: str = "set") -> EvalContext:
    return EvalContext(tmp_path / name, eval_set=name)


def test_generation_accuracy_scores_the_written_predictions(red_model, colours, tmp_path):
    metrics, main = run_evaluator("generation_accuracy", red_model, {"path": str(colours["red"]), "max_new_tokens": 4},
                                  _ctx(tmp_path))
    assert main == "accuracy" and metrics["accuracy"] == 1.0 and metrics["total"] == 8
    assert metrics["accuracy/even"] == metrics["accuracy/odd"] == 1.0
    rows = [json.loads(x) for x in (tmp_path / "set" / "predictions.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == ["red"] * 8
    other, _ = run_evaluator("generation_accuracy", red_model,
                             {"path": str(colours["blue"]), "max_new_tokens": 4, "max_samples": 3}, _ctx(tmp_path, "b"))
    assert other == {"accuracy": 0.0, "correct": 0.0, "total": 3.0, "accuracy/even": 0.0, "accuracy/odd": 0.0}


@register_reward("test_says_red")
def _says_red(samples, completions, **_):
    return [1.0 if c.strip() == "red" else 0.0 for c in completions]


@register_reward("test_length")
def _length(samples, completions, **_):
    return [float(len(c)) for c in completions]


def test_reward_mean_combines_weighted_rewards(red_model, colours, tmp_path):
    spec = {"path": str(colours["blue"]), "rewards": "test_says_red,test_length", "reward_weights": "2,0.5",
            "max_new_tokens": 4, "max_samples": 4}
    metrics, main = run_evaluator("reward_mean", red_model, spec, _ctx(tmp_path))
    # every greedy completion is "red": 2 * 1 + 0.5 * 3 characters
    assert main == "reward_mean" and metrics["reward_mean"] == pytest.approx(3.5)
    assert metrics["reward/test_says_red"] == 1.0 and metrics["reward/test_length"] == 3.0
    assert len((tmp_path / "set" / "completions.jsonl").read_text().splitlines()) == 4
    sampled = {**spec, "temperature": 1.5, "n": 3, "seed": 7}
    first, _ = run_evaluator("reward_mean", red_model, sampled, _ctx(tmp_path, "s1"))
    second, _ = run_evaluator("reward_mean", red_model, sampled, _ctx(tmp_path, "s2"))
    rows = [json.loads(x) for x in (tmp_path / "s1" / "completions.jsonl").read_text().splitlines()]
    assert first == second and len(rows) == 12  # seeded sampling: 4 prompts x 3 completions, reproducible
    assert first["reward_mean"] == pytest.approx(sum(r["reward"] for r in rows) / 12)
    with pytest.raises(EvaluatorError, match="'rewards' is required"):
        run_evaluator("reward_mean", red_model, {"path": str(colours["blue"])}, _ctx(tmp_path))


def test_eval_command_uses_the_shared_evaluator(red_model, colours, tmp_path):
    from mmsft.cli import main

    assert main(["eval", f"model.name_or_path={red_model}", f"data.eval_path={colours['red']}",
                 f"train.output_dir={tmp_path}", "eval.max_new_tokens=4"]) == 0
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report == {"accuracy": 1.0, "correct": 8, "total": 8, "by_kind": {"even": 1.0, "odd": 1.0}}


def test_bad_arguments_fail_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'max_sample'.*Did you mean 'max_samples'"):
        run_evaluator("generation_accuracy", tmp_path, {"path": "x.jsonl", "max_sample": 3}, _ctx(tmp_path))
    with pytest.raises(ConfigError, match=r"'match': 'fuzzy' is not one of"):
        run_evaluator("generation_accuracy", tmp_path, {"path": "x.jsonl", "match": "fuzzy"}, _ctx(tmp_path))
    with pytest.raises(ConfigError, match="'batch_size': expected an integer, got 'many'"):
        run_evaluator("generation_accuracy", tmp_path, {"batch_size": "many"}, _ctx(tmp_path))
    with pytest.raises(RegistryError, match="Did you mean 'generation_accuracy'"):
        run_evaluator("generation_acuracy", tmp_path, {}, _ctx(tmp_path))
    with pytest.raises(EvaluatorError, match="key 'path' is required"):
        run_evaluator("generation_accuracy", tmp_path, {}, _ctx(tmp_path))


def two_numbers(model_dir, spec, ctx):
    """A plain function used as ``module:function``: no declared metric, so the first key is the main one."""
    (ctx.out_dir / "seen.txt").write_text(f"{model_dir}|{spec['scale']}")
    return {"score": 0.5 * spec["scale"], "other": 1}


def broken(model_dir, spec, ctx):
    return {"score": "high"}


@EVALUATORS.register("test_declares_missing", metric="accuracy")
def declares_missing(model_dir, spec, ctx):
    return {"score": 1.0}


def test_module_function_evaluators_and_bad_returns(tmp_path):
    metrics, main = run_evaluator(f"{__name__}:two_numbers", tmp_path / "m", {"scale": 4}, _ctx(tmp_path))
    assert (metrics, main) == ({"score": 2.0, "other": 1.0}, "score")
    assert (tmp_path / "set" / "seen.txt").read_text() == f"{tmp_path / 'm'}|4"
    with pytest.raises(EvaluatorError, match=r"returned 'score'='high'; expected a number"):
        run_evaluator(f"{__name__}:broken", tmp_path, {}, _ctx(tmp_path))
    with pytest.raises(EvaluatorError, match="declares main metric 'accuracy' but returned"):
        run_evaluator("test_declares_missing", tmp_path, {}, _ctx(tmp_path))


# --- puzzles ---------------------------------------------------------------------------------------------------
def _targets(path: Path) -> list[str]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return ["".join(p["text"] for p in r["messages"][-1]["content"]) for r in rows]


@pytest.fixture(scope="module")
def puzzle_sets(tmp_path_factory) -> dict[str, Path]:
    from tasks.puzzles.build import BuildConfig, build_general_points, build_sokoban
    from tasks.vgrp.api import build_dataset

    root = tmp_path_factory.mktemp("puzzles")
    build_sokoban(BuildConfig(world="sokoban", out=root / "sok", split="test", format="step", num=4))
    build_general_points(BuildConfig(world="general-points", out=root / "gp", split="test", format="plan", num=4))
    build_dataset("sudoku", root / "vgrp", num=4, seed=0, with_image=False)
    return {"sokoban": root / "sok" / "test.jsonl", "general-points": root / "gp" / "test.jsonl",
            "vgrp": root / "vgrp" / "data.jsonl"}


@pytest.mark.parametrize("world", ["sokoban", "general-points", "vgrp"])
def test_puzzle_success_uses_the_verifiers(world, puzzle_sets, red_model, tmp_path, monkeypatch):
    import mmsft.eval.generation as generation
    import tasks.puzzles.evaluators  # noqa: F401  (registers puzzle_success)

    path = puzzle_sets[world]
    gold = _targets(path)
    # the solver's targets are verified by construction; answer half of them and garble the other half
    replies = [text if i % 2 == 0 else "no idea" for i, text in enumerate(gold)]
    monkeypatch.setattr(generation, "generate", lambda model, adapter, samples, **kw: replies[: len(samples)])
    metrics, main = run_evaluator("puzzle_success", red_model, {"path": str(path)}, _ctx(tmp_path))
    assert main == "success_rate" and metrics["success_rate"] == 0.5
    sent = [json.loads(x)["response"] for x in (tmp_path / "set" / "predictions.jsonl").read_text().splitlines()]
    assert sent == replies and (tmp_path / "set" / "report.json").is_file()
    if world != "vgrp":
        assert metrics["parse_ok_rate"] == 0.5 and metrics["missing"] == 0
    with pytest.raises(EvaluatorError, match="world='vgrp' but the rows are"):
        run_evaluator("puzzle_success", red_model, {"path": str(puzzle_sets["sokoban"]), "world": "vgrp"},
                      _ctx(tmp_path))


def test_puzzle_success_on_the_model_and_bad_rows(puzzle_sets, red_model, colours, tmp_path):
    import tasks.puzzles.evaluators  # noqa: F401

    metrics, _ = run_evaluator("puzzle_success", red_model,
                               {"path": str(puzzle_sets["sokoban"]), "max_samples": 2, "max_new_tokens": 4},
                               _ctx(tmp_path))
    assert metrics["success_rate"] == 0.0 and metrics["n"] == 2  # the model answers "red", not a move
    with pytest.raises(EvaluatorError, match="row 'red0' has no puzzle answer"):
        run_evaluator("puzzle_success", red_model, {"path": str(colours["red"])}, _ctx(tmp_path))


# --- LIBERO ----------------------------------------------------------------------------------------------------
def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class ModelDirPolicy:
    """A factory that takes the stage's model folder (what a VLA policy wrapper does); holds the gripper open."""

    def __init__(self, model_dir: str = "") -> None:
        if not Path(model_dir).is_dir():
            raise FileNotFoundError(model_dir)

    def __call__(self, obs, info):
        return [0.0] * 6 + [-1.0]


@pytest.mark.libero
@pytest.mark.skipif(not (_installed("robosuite") and _installed("libero")), reason="needs the [libero] extra")
def test_libero_success_runs_the_protocol(tmp_path):
    import tasks.libero.evaluators  # noqa: F401

    common = {"suite": "libero_spatial", "tasks": "0", "trials_per_task": 1, "cameras": "none",
              "max_episode_steps": 0}
    metrics, main = run_evaluator("libero_success", tmp_path, {"policy": "oracle", **common}, _ctx(tmp_path, "o"))
    assert main == "success_rate" and metrics["success_rate"] == 1.0 and metrics["policy_uses_model"] == 0.0
    assert json.loads((tmp_path / "o" / "results.json").read_text())["successes"] == 1
    metrics, _ = run_evaluator("libero_success", tmp_path, {"policy": f"{__name__}:ModelDirPolicy", **common,
                                                            "max_episode_steps": 20}, _ctx(tmp_path, "m"))
    assert metrics["policy_uses_model"] == 1.0 and metrics["success_rate"] == 0.0 and metrics["episodes"] == 1
    with pytest.raises(EvaluatorError, match="key 'policy' is required"):
        run_evaluator("libero_success", tmp_path, common, _ctx(tmp_path))
