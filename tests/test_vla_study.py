"""The VLA-OPD study's bookkeeping without the simulator: env steps from the rollout metrics, the table, the curves
and the GIF selection (the study itself runs in the simulator: ``mmsft study vla-opd --quick``)."""

from __future__ import annotations

import json

import pytest

from tasks.libero.study import StudyConfig, collect_gifs, env_steps_per_batch, plot_curves, to_markdown


def _point(seen: int, held: int | None = None, old: int | None = None, n: int = 5) -> dict:
    out = {"seen": {"successes": seen, "episodes": n, "success_rate": seen / n}}
    if held is not None:
        out["heldout"] = {"successes": held, "episodes": n, "success_rate": held / n}
        out["forgetting"] = {"successes": old, "episodes": n, "success_rate": old / n}
    return out


def test_table_curves_and_gifs(tmp_path):
    run = tmp_path / "opd"
    run.mkdir()
    rows = [{"step": 1, "rollout/episodes": 4.0, "rollout/turns": 50.0}, {"step": 1, "train/loss": 0.1},
            {"step": 2, "rollout/episodes": 4.0, "rollout/turns": 30.5}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert env_steps_per_batch(run, chunk=4) == [800.0, 488.0]

    base = {"batches": 0, "env_steps": 0.0, "wall_s": 0.0, **_point(1, 0, 3)}
    results = {"config": {"tasks": [0, 1]}, "phases": {"sft": {"wall_s": 10.0, "cpu_s": 8.0}},
               "total": {"wall_s": 10.0, "cpu_s": 8.0},
               "methods": {"opd": [base, {"batches": 1, "env_steps": 800.0, "wall_s": 5.0, **_point(2)},
                                   {"batches": 2, "env_steps": 1288.0, "wall_s": 9.0, **_point(4, 2, 3)}],
                           "grpo": [base, {"batches": 2, "env_steps": 1700.0, "wall_s": 8.0, **_point(1, 0, 2)}]}}
    md = to_markdown(results)
    assert "| SFT (start) | 0 | 0 | 1/5 | 0/5 | 3/5 |" in md
    assert "| opd | 1 | 800 | 2/5 | – | – |" in md and "| opd | 2 | 1288 | 4/5 | 2/5 | 3/5 |" in md
    assert "| **total** | **10.0** | **8.0** |" in md
    plot_curves(results, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 5000

    cfg = StudyConfig(out=tmp_path, gifs=1)
    videos = tmp_path / "eval" / "opd-2" / "videos"
    videos.mkdir(parents=True)
    for name in ("task01_init00_ep00000_failure.gif", "task01_init01_ep00001_success.gif"):
        (videos / name).write_bytes(b"GIF89a")
    copied = collect_gifs(cfg, tmp_path / "gifs")
    assert [p.name for p in copied] == ["opd-2_task01_init01_ep00001_success.gif"]


def test_quick_is_smaller_everywhere():
    quick, full = StudyConfig.quick(), StudyConfig()
    for key in ("demos_per_task", "sft_steps", "rollout_batches", "eval_trials", "curve_points"):
        assert getattr(quick, key) < getattr(full, key), key
    assert quick.group_size <= full.group_size <= 2  # one simulator worker per episode: at most 2 on 2 cores
    assert StudyConfig.quick(seed=3).seed == 3


def test_resume_reuses_only_matching_evaluations(tmp_path):
    from envs.libero.vector import EpisodeSpec
    from tasks.libero.study import _cached_eval, _finished_sft

    folder = tmp_path / "eval" / "sft"
    specs = [EpisodeSpec(1, 0), EpisodeSpec(1, 40), EpisodeSpec(0, 0)]
    assert _cached_eval(folder, specs) is None  # nothing there yet
    folder.mkdir(parents=True)
    rows = [{"task_id": 1, "init_state": 40}, {"task_id": 0, "init_state": 0}, {"task_id": 1, "init_state": 0}]
    (folder / "results.json").write_text(json.dumps({"results": rows}))
    assert _cached_eval(folder, specs)["results"] == rows  # same episodes in another order
    assert _cached_eval(folder, specs + [EpisodeSpec(1, 1)]) is None  # more trials than were run: evaluate again
    cfg = StudyConfig(out=tmp_path)
    (tmp_path / "sft" / "final").mkdir(parents=True)
    (tmp_path / "sft" / "final" / "model.safetensors").write_bytes(b"x")
    assert _finished_sft(cfg) is None  # no summary.json: the SFT run did not finish
    (tmp_path / "sft" / "summary.json").write_text("{}")
    assert _finished_sft(cfg) == tmp_path / "sft" / "final"


def test_merge_of_per_method_studies(tmp_path):
    from tasks.libero.study import merge_results

    shared = {"collect demonstrations": {"wall_s": 0.0, "cpu_s": 0.0, "reused": True},
              "sft": {"wall_s": 0.0, "cpu_s": 0.0, "reused": True}}
    base = {"batches": 0, "env_steps": 0.0, "wall_s": 0.0, **_point(1, 0, 0)}
    for method, seen in (("grpo", 1), ("opd", 3)):
        folder = tmp_path / method
        (folder / "gifs").mkdir(parents=True)
        (folder / "gifs" / f"{method}-4_x.gif").write_bytes(b"GIF89a")
        part = {"config": {"tasks": [0, 1]}, "phases": {**shared, f"post-train {method}": {"wall_s": 5.0,
                                                                                             "cpu_s": 4.0}},
                "methods": {method: [base, {"batches": 4, "env_steps": 900.0, "wall_s": 5.0,
                                            **_point(seen, 1, 0)}]}}
        (folder / "results.json").write_text(json.dumps(part))
    merged = merge_results([tmp_path / "grpo", tmp_path / "opd"], tmp_path / "all")
    assert list(merged["methods"]) == ["grpo", "opd"]
    assert merged["total"] == {"wall_s": 10.0, "cpu_s": 8.0}  # reused phases count once, at no time
    md = (tmp_path / "all" / "results.md").read_text()
    assert "| grpo | 4 | 900 | 1/5 | 1/5 | 0/5 |" in md and "| opd | 4 | 900 | 3/5 | 1/5 | 0/5 |" in md
    assert "| sft | reused | reused |" in md
    assert sorted(p.name for p in (tmp_path / "all" / "gifs").iterdir()) == ["grpo-4_x.gif", "opd-4_x.gif"]
    with pytest.raises(FileNotFoundError, match="dagger/results.json does not exist"):
        merge_results([tmp_path / "grpo", tmp_path / "dagger"], tmp_path / "all2")


def test_resume_refuses_other_sft_settings_and_keeps_phase_times(tmp_path):
    from tasks.libero.study import Clock, check_study_key

    cfg = StudyConfig(out=tmp_path)
    check_study_key(cfg)  # a new folder records its key
    check_study_key(cfg)  # the same settings resume
    with pytest.raises(ValueError, match=r"sft_steps: 4000 there, 300 now"):
        check_study_key(StudyConfig.quick(out=tmp_path))
    other = tmp_path / "old"
    (other / "sft").mkdir(parents=True)
    with pytest.raises(ValueError, match="no study_key.json"):
        check_study_key(StudyConfig(out=other))

    clock = Clock(tmp_path / "phases.json")
    clock.run("eval grpo-3", sum, [1, 2])
    assert set(json.loads((tmp_path / "phases.json").read_text())) == {"eval grpo-3"}  # saved when it finished
    recorded = {"wall_s": 12.5, "cpu_s": 3.0}  # as an earlier process would have written it
    (tmp_path / "phases.json").write_text(json.dumps({"sft": recorded}))
    resumed = Clock(tmp_path / "phases.json")
    resumed.reuse("sft")
    resumed.reuse("eval sft")  # never recorded: no time
    assert resumed.phases["sft"] == {**recorded, "reused": True}
    assert resumed.phases["eval sft"] == {"wall_s": 0.0, "cpu_s": 0.0, "reused": True}
    results = {"config": {"tasks": [0, 1]}, "start": _point(3, 2, 4), "methods": {}, "phases": resumed.phases,
               "total": {"wall_s": recorded["wall_s"], "cpu_s": recorded["cpu_s"]}}
    md = to_markdown(results)  # before any method has a point: the SFT row and the earlier run's time
    assert "| SFT (start) | 0 | 0 | 3/5 | 2/5 | 4/5 |" in md and "| eval sft | reused | reused |" in md
    assert f"| sft (earlier run) | {recorded['wall_s']} | {recorded['cpu_s']} |" in md
