"""The continual study's setup without training: task data from the worlds (option lists in the prompt, answers among
them, distinct ids), the experiment it runs (validated for every method and seed against the shipped base), the
computed conclusions, and the ``mmsft study continual`` command registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsft.continual import load_experiment, plan_runs
from tasks.continual.study import StudyScale, build_data, experiment
from tasks.continual.verdict import forgetting_statement, reward_curve, rif_statement, rl_reward_table

TINY = StudyScale(train=5, test=4, general=6, warm=2, replay=4, warm_steps=2, sft_steps=2, rft_epochs=1.0)
BASE = Path(__file__).resolve().parents[1] / "assets" / "shapes_base"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return build_data(tmp_path_factory.mktemp("study") / "data", TINY, seed=0)


def _rows(path: str) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def test_task_data(data):
    assert list(data["tasks"]) == ["classify", "count", "direction", "vgrp-cell", "sokoban"]
    for name, paths in data["tasks"].items():
        train, test = _rows(paths["train"]), _rows(paths["test"])
        assert len(train) == 5 and len(test) == 4
        assert not {r["id"] for r in train} & {r["id"] for r in test}
        for row in train + test:
            prompt = row["messages"][0]["content"][-1]["text"]
            if name == "sokoban":
                assert row["answer"]["world"] == "sokoban" and "<answer>" in prompt
                continue
            assert "Please choose one from list [ " in prompt and "Please directly output the answer." in prompt
            assert row["answer"] in row["meta"]["choices"] and all(c in prompt for c in row["meta"]["choices"])
    direction = _rows(data["tasks"]["direction"]["train"])[0]
    assert direction["messages"][0]["content"][0]["type"] == "video" and direction["meta"]["frames"] == 2
    vgrp = _rows(data["tasks"]["vgrp-cell"]["test"])
    assert [r["answer"] for r in vgrp] == ["*", "1", "2", "3"]  # answers cycle through the choices
    warm = _rows(data["warmup"])
    assert len(warm) == 5 * 2 + 4 and len({r["id"] for r in warm}) == len(warm)
    assert all(Path(p["image"]).is_absolute() for r in warm for p in r["messages"][0]["content"] if "image" in p)
    general = _rows(data["general"])
    assert [r["meta"]["kind"] for r in general] == ["colour", "shape", "size"] * 2


def test_data_is_reused_when_the_scale_is_the_same(data):
    manifest = Path(data["warmup"]).parent / "data.json"
    stamp = manifest.stat().st_mtime_ns
    assert build_data(manifest.parent, TINY, seed=0) == data and manifest.stat().st_mtime_ns == stamp


def test_the_study_experiment_validates_for_every_method_and_seed(data, tmp_path):
    doc = experiment(tmp_path, data, TINY, [0, 1], str(BASE), ["sft", "rft", "rif_rft", "multitask", "past"])
    runs = plan_runs(load_experiment(doc))
    assert [(r.method.name, r.seed) for r in runs][:5] == [("sft", 0), ("rft", 0), ("rif_rft", 0),
                                                          ("multitask", 0), ("past", 0)]
    assert len(runs) == 10 and [len(r.plan.stages) for r in runs[:5]] == [5, 5, 5, 1, 5]
    assert not (tmp_path / "run").exists()  # validation writes nothing
    rft = runs[1].pipeline.stages[4].config(tmp_path / "x", start_model="m")
    assert rft.rl.rewards == "puzzle_success" and rft.rl.max_new_tokens == 10 and rft.train.epochs == TINY.rft_epochs


def _stat(mean: float, std: float = 0.0, n: int = 2) -> dict:
    return {"mean": mean, "std": std, "n": n}


def _summary(sft_bwt: dict, rft_bwt: dict) -> dict:
    def method(bwt: dict, plasticity: float) -> dict:
        return {"bwt": bwt, "forgetting": _stat(-bwt["mean"]), "acc": _stat(0.5), "plasticity_mean":
                _stat(plasticity), "general": {"g": _stat(-0.1)},
                "costs": {"rl_rollouts": _stat(1000), "filter_rollouts": _stat(0), "train_cpu_s": _stat(100.0),
                          "filter_cpu_s": _stat(0.0), "kept": _stat(0), "instances": _stat(0)}}

    out = {"sft": method(sft_bwt, 0.6), "rft": method(rft_bwt, 0.4), "rif_rft": method(rft_bwt, 0.4)}
    out["rif_rft"]["costs"].update(rl_rollouts=_stat(400), filter_rollouts=_stat(200), train_cpu_s=_stat(50.0),
                                   filter_cpu_s=_stat(10.0), kept=_stat(40), instances=_stat(100))
    return out


def test_conclusions_are_computed():
    text = forgetting_statement(_summary(_stat(-0.3, 0.05), _stat(-0.05, 0.05)))
    assert text.startswith('**"RFT forgets less than SFT" holds here**: BWT -0.050 ± 0.050 (RFT) vs -0.300 ± 0.050')
    assert "part of its smaller forgetting is smaller change" in text  # RFT's plasticity is lower here
    text = forgetting_statement(_summary(_stat(-0.10, 0.1), _stat(-0.05, 0.1)))
    assert "holds here only within seed noise" in text
    assert "does not hold here" in forgetting_statement(_summary(_stat(-0.05), _stat(-0.2)))
    assert "not measured" in forgetting_statement({"sft": {}})
    text = rif_statement(_summary(_stat(-0.3), _stat(-0.05)))
    assert "kept 40 of 100" in text and "400 vs 1000 for RFT (-60%)" in text and "600 (-40%)" in text
    assert "50 s vs 100 s (-50%); with the filter 60 s (-40%)" in text


def test_rl_reward_curve_from_a_stage_log(tmp_path):
    """First / last 20% of the logged training rewards (10 steps: 2 each), SFT rows and a torn last line skipped;
    the table averages the seeds and marks stages without a reward."""
    stage = tmp_path / "runs" / "rft" / "seed0" / "stages" / "2-count"
    stage.mkdir(parents=True)
    rows = [{"step": i + 1, "reward/total": r} for i, r in enumerate([0.0, 0.5, 1, 1, 1, 1, 1, 1, 0.25, 0.75])]
    (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 11, "rew')
    assert reward_curve(stage / "metrics.jsonl") == {"first": 0.25, "last": 0.5, "steps": 10.0}
    other = tmp_path / "runs" / "rft" / "seed1" / "stages" / "2-count"
    other.mkdir(parents=True)
    (other / "metrics.jsonl").write_text(json.dumps({"step": 1, "reward/total": 0.75}) + "\n")
    sft = tmp_path / "runs" / "rft" / "seed0" / "stages" / "1-classify"
    sft.mkdir(parents=True)
    (sft / "metrics.jsonl").write_text(json.dumps({"step": 1, "train/loss": 1.0}) + "\n")
    assert reward_curve(sft / "metrics.jsonl") is None and reward_curve(tmp_path / "missing.jsonl") is None
    table = rl_reward_table(tmp_path, ["rft"], ["classify", "count"])
    assert "| rft | – | 0.50 → 0.62 (6 steps) |" in table  # seed means: (0.25 + 0.75) / 2, (0.5 + 0.75) / 2
    assert rl_reward_table(tmp_path, ["sft"], ["classify"]).startswith("RL training reward: no RL stage")


def test_study_command_is_registered():
    from mmsft.cli import build_parser
    from mmsft.plugins import import_plugin

    import_plugin("tasks.continual.plugin")
    help_text = build_parser().format_help()
    assert "continual" in help_text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["study", "continual", "--help"])


def _puzzle_workspace(root: Path) -> None:
    from mmsft.models.tiny import build_tiny
    from tasks.puzzles.build import BuildConfig, build_general_points, build_sokoban

    build_tiny("text", root / "models" / "tiny-text", seed=0)
    for split, num in (("train", 6), ("test", 4)):
        build_sokoban(BuildConfig(world="sokoban", out=root / "data" / "sok", split=split, format="step", num=num))
        build_general_points(BuildConfig(world="general-points", out=root / "data" / "gp", split=split,
                                         format="plan", num=num))


def test_puzzles_recipe_validates_with_an_environment_task(tmp_path, monkeypatch):
    recipe = Path(__file__).resolve().parents[1] / "tasks" / "continual" / "recipes" / "puzzles.yaml"
    _puzzle_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)  # the recipe's paths are relative to the working directory, as in recipes
    runs = plan_runs(load_experiment(recipe))
    assert [(r.method.name, r.seed) for r in runs] == [(m, s) for s in (0, 1) for m in ("sft", "grpo", "rif")]
    grpo, rif, sft = (runs[1].pipeline.stages[2], runs[2].pipeline.stages[2], runs[0].pipeline.stages[2])
    for stage in (grpo, rif):  # RL stages on the environment task train in the environment
        cfg = stage.config(tmp_path / "x", start_model="m")
        assert cfg.task == "sokoban" and cfg.stage == "env" and cfg.rl.rewards == ""
    assert sft.config(tmp_path / "x", start_model="m").stage == "sft"


def test_environment_task_end_to_end(tmp_path, monkeypatch):
    """One GRPO step in the Sokoban environment per method; RIF-RFT records that it has nothing to filter."""
    from mmsft.continual import run_experiment

    _puzzle_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    doc = {"output_dir": "run", "plugins": ["tasks.puzzles.evaluators", "tasks.puzzles.env_tasks"],
           "base_model": "models/tiny-text",
           "defaults": {"train": {"torch_threads": 1, "progress": False, "tensorboard": False, "max_steps": 1,
                                  "micro_batch_size": 4},
                        "rl": {"group_size": 2, "prompts_per_step": 2, "log_completions": 0}},
           "tasks": [{"name": "sok", "env": {"task": "sokoban", "env": {
               "mode": "single_turn", "max_turns": 1, "max_new_tokens_per_turn": 8, "episode_reward": "success",
               "eval_episodes": 0, "log_media": 0, "log_episodes": 0}},
               "eval": {"evaluator": "puzzle_success", "path": "data/sok/test.jsonl", "max_new_tokens": 8}}],
           "methods": ["rft", "rif_rft"]}
    result = run_experiment(doc, quiet=True)
    runs = {r["method"]: r for r in result.results["runs"]}
    assert runs["rft"]["log"]["sok"]["train"]["stage"] == "env"
    assert runs["rft"]["log"]["sok"]["train"]["rollouts"] == 1 * 2 * 2
    assert "environment task 'sokoban'" in runs["rif_rft"]["log"]["sok"]["selection"]["not_applied"]
    assert runs["rft"]["A"][1][0] is not None and result.results["summary"]["rft"]["bwt"]["mean"] is None


def test_held_out_scene_pools_match_the_built_images(tmp_path):
    """The scene streams the disjointness check uses are the ones the builders render."""
    import numpy as np
    from PIL import Image

    from mmsft.data.shapes import render
    from tasks.continual.worlds import build_classify, build_general, classify_test_scenes, general_scenes

    general = build_general(tmp_path / "general", 5, 3)
    for index, scene in enumerate(general_scenes(5, 3)):
        built = np.asarray(Image.open(general.parent / "images" / f"general-{index:05d}.png").convert("RGB"))
        assert np.array_equal(built, np.asarray(render(scene).convert("RGB")))
    build_classify(tmp_path / "classify", 24, 24, 3)
    pool = {np.asarray(render(s).convert("RGB")).tobytes() for s in classify_test_scenes(24, 3)}
    for index in range(24):
        image = Image.open(tmp_path / "classify" / "images" / f"test-{index:05d}.png").convert("RGB")
        assert np.asarray(image).tobytes() in pool


def test_base_disjointness_check_can_fail(tmp_path, monkeypatch):
    import json as _json

    from tasks.continual import study
    from tasks.continual.worlds import classify_test_scenes
    from tasks.image_classification.base_model import THINKING_PATH

    assert study.check_base_disjoint(tmp_path, study.QUICK)["checked"] is False  # not a thinking-base build
    report = _json.loads((THINKING_PATH / "pretrain_report.json").read_text())
    checked = study.check_base_disjoint(THINKING_PATH, study.QUICK)
    assert checked["overlapping"] == {"classify": 0, "attributes": 0}
    assert checked["pretraining_images"] > report["num_images"]
    # a pretraining stream that contains a held-out classify image is refused
    (tmp_path / "pretrain_report.json").write_text(_json.dumps({"num_images": 4, "seed": 0}))
    leaked = classify_test_scenes(study.QUICK.test, 0)[0]
    real = study.pretraining_scenes
    monkeypatch.setattr(study, "pretraining_scenes", lambda n, s: real(n, s) | {leaked})
    with pytest.raises(ValueError, match=r"pretrain_report\.json: the base model was pretrained on held-out images"):
        study.check_base_disjoint(tmp_path, study.QUICK)
