"""The VLA-OPD study's bookkeeping without the simulator: env steps from the rollout metrics, the table, the curves
and the GIF selection (the study itself runs in the simulator: ``mmsft study vla-opd --quick``)."""

from __future__ import annotations

import json

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
    for key in ("demos_per_task", "sft_steps", "rollout_batches", "eval_trials", "group_size"):
        assert getattr(quick, key) < getattr(full, key), key
    assert StudyConfig.quick(seed=3).seed == 3
