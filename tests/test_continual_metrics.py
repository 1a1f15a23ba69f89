"""Continual metrics on golden matrices (hand-computed values), the RIF-RFT filter on a fixed rollout table, and the
report's cost accounting."""

from __future__ import annotations

import math

import pytest

from mmsft.continual.metrics import general_deltas, joint_metrics, mean_matrix, mean_std, sequence_metrics
from mmsft.continual.report import run_costs, summarize, to_markdown
from mmsft.data.selection import RolloutFilter, filter_table

# rows: start, after task 1, after task 2, after task 3; columns: tasks 1..3
A3 = [[0.10, 0.20, 0.30],
      [0.80, 0.25, 0.30],
      [0.60, 0.90, 0.35],
      [0.40, 0.70, 0.95]]


def test_three_task_golden_values():
    m = sequence_metrics(A3)
    assert m["acc"] == pytest.approx((0.40 + 0.70 + 0.95) / 3)
    # BWT = mean over k<3 of A[3,k] − A[k,k] = ((0.40−0.80) + (0.70−0.90)) / 2 = −0.30
    assert m["bwt"] == pytest.approx(-0.30)
    # FWT = mean over k≥2 of A[k−1,k] − A[0,k] = ((0.25−0.20) + (0.35−0.30)) / 2 = 0.05
    assert m["fwt"] == pytest.approx(0.05)
    assert m["plasticity"] == [0.80, 0.90, 0.95]
    assert m["plasticity_mean"] == pytest.approx((0.80 + 0.90 + 0.95) / 3)
    # forgetting: task 1 best of rows 1..2 is 0.80 → 0.80−0.40; task 2 best of row 2 is 0.90 → 0.90−0.70
    assert m["forgetting"] == pytest.approx(((0.80 - 0.40) + (0.90 - 0.70)) / 2)


def test_forgetting_uses_the_best_earlier_row_not_the_diagonal():
    a = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.9, 0.6, 0.0], [0.3, 0.6, 0.7]]
    m = sequence_metrics(a)
    assert m["bwt"] == pytest.approx(((0.3 - 0.5) + (0.6 - 0.6)) / 2)  # vs the diagonal
    assert m["forgetting"] == pytest.approx(((0.9 - 0.3) + 0.0) / 2)  # vs the best row (0.9 after task 2)


def test_one_task_edge_case():
    m = sequence_metrics([[0.2], [0.7]])
    assert m["acc"] == pytest.approx(0.7) and m["plasticity"] == [0.7]
    assert m["bwt"] is None and m["fwt"] is None and m["forgetting"] is None


def test_two_task_edge_case():
    m = sequence_metrics([[0.1, 0.2], [0.9, 0.4], [0.5, 1.0]])
    assert m["acc"] == pytest.approx(0.75)
    assert m["bwt"] == pytest.approx(0.5 - 0.9)
    assert m["fwt"] == pytest.approx(0.4 - 0.2)
    assert m["forgetting"] == pytest.approx(0.9 - 0.5)


def test_missing_cell_makes_dependent_metrics_none():
    m = sequence_metrics([[0.1, 0.2], [None, 0.4], [0.5, 1.0]])
    assert m["bwt"] is None and m["plasticity_mean"] is None
    assert m["fwt"] == pytest.approx(0.2) and m["acc"] == pytest.approx(0.75)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="N\\+1 rows"):
        sequence_metrics([[0.1, 0.2], [0.3, 0.4]])
    with pytest.raises(ValueError, match="different lengths"):
        sequence_metrics([[0.1, 0.2], [0.3], [0.1, 0.1]])


def test_joint_general_and_seed_statistics():
    joint = joint_metrics([[0.1, 0.2, 0.3], [0.7, 0.8, 0.9]])
    assert joint["acc"] == pytest.approx(0.8) and joint["bwt"] is None and joint["plasticity"] is None
    assert general_deltas([0.6, 0.5, 0.2, 0.4]) == pytest.approx({"final": -0.2, "min": -0.4})
    stat = mean_std([0.2, 0.4, None])
    assert stat["mean"] == pytest.approx(0.3) and stat["n"] == 2
    assert stat["std"] == pytest.approx(math.sqrt(((0.2 - 0.3) ** 2 + (0.4 - 0.3) ** 2) / 1))
    assert mean_std([0.5]) == {"mean": 0.5, "std": 0.0, "n": 1}
    assert mean_std([None]) == {"mean": None, "std": None, "n": 0}
    assert mean_matrix([[[0.0, 1.0]], [[1.0, None]]]) == [[0.5, None]]


# ---------------------------------------------------------------------------------------------- RIF-RFT filter
TABLE = {  # instance -> rewards of K=4 rollouts; None: over data.max_length, not sampled
    "a": [0.0, 0.0, 0.0, 0.0],  # incompetent
    "b": [1.0, 0.0, 0.0, 0.0],  # 1 success
    "c": [1.0, 1.0, 0.0, 1.0],  # 3 successes
    "d": [1.0, 1.0, 1.0, 1.0],  # mastered
    "e": [0.4, 0.6, 0.99, 2.0],  # threshold 1.0: only 2.0 succeeds
    "f": None,
}


def test_filter_counts_on_a_fixed_table():
    kept, counts = filter_table(TABLE, RolloutFilter(k=4, min_successes=1, max_successes=4))
    assert kept == ["b", "c", "d", "e"]
    assert counts == {"instances": 6, "kept": 4, "incompetent": 1, "mastered": 0, "overlong": 1, "rollouts": 20,
                      "histogram": {"0": 1, "1": 2, "3": 1, "4": 1}}
    kept, counts = filter_table(TABLE, RolloutFilter(k=4, min_successes=1, max_successes=3))
    assert kept == ["b", "c", "e"] and counts["mastered"] == 1 and counts["incompetent"] == 1
    kept, counts = filter_table(TABLE, RolloutFilter(k=4, min_successes=2, max_successes=4, success_threshold=0.5))
    assert kept == ["c", "d", "e"] and counts["incompetent"] == 2  # e: 0.6, 0.99, 2.0 succeed at 0.5
    kept, _ = filter_table(TABLE, RolloutFilter(k=4, min_successes=0, max_successes=4))
    assert kept == ["a", "b", "c", "d", "e"]  # min 0 keeps everything sampled


def test_filter_rule_is_validated():
    with pytest.raises(ValueError, match="min_successes <= max_successes <= k"):
        RolloutFilter(k=4, min_successes=3, max_successes=2)
    with pytest.raises(ValueError, match="min_successes <= max_successes <= k"):
        RolloutFilter(k=4, min_successes=1, max_successes=5)


# ---------------------------------------------------------------------------------------------- report
def _results() -> dict:
    log = {"t1": {"train": {"cpu_s": 2.0, "wall_s": 3.0, "rollouts": 64, "steps": 4}},
           "t2": {"selection": {"cpu_s": 1.5, "rollouts": 32, "kept": 3, "instances": 8, "incompetent": 5,
                                "mastered": 0, "overlong": 0},
                  "train": {"cpu_s": 1.0, "wall_s": 1.0, "rollouts": 16, "steps": 1}},
           "t3": {"skipped": "RIF-RFT kept no instance of 8"}}
    runs = [{"method": "m", "kind": "rif_rft", "seed": s, "joint": False, "rows": ["start", "t1", "t2"],
             "A": [[0.0, 0.0], [0.5 + s / 10, 0.0], [0.4, 1.0]], "general": {"g": [0.8, 0.7, 0.6]}, "log": log}
            for s in (0, 1)]
    runs.append({"method": "j", "kind": "multitask", "seed": 0, "joint": True, "rows": ["start", "joint"],
                 "A": [[0.0, 0.0], [0.9, 0.7]], "general": {"g": [0.8, 0.9]}, "log": {}})
    return {"output_dir": "x", "tasks": [{"name": "t1", "metric": "accuracy"}, {"name": "t2", "metric": "accuracy"}],
            "general": [{"name": "g", "metric": "accuracy"}], "seeds": [0, 1], "start": {"start": {"t1": 0.0}},
            "methods": [{"name": "m", "method": "rif_rft"}, {"name": "j", "method": "multitask"}], "runs": runs}


def test_costs_and_summary():
    assert run_costs(_results()["runs"][0]["log"]) == {
        "train_cpu_s": 3.0, "train_wall_s": 4.0, "filter_cpu_s": 1.5, "rl_rollouts": 80, "filter_rollouts": 32,
        "kept": 3, "instances": 8, "skipped_stages": 1}
    summary = summarize(_results())
    m = summary["m"]
    assert m["n_seeds"] == 2 and m["acc"]["mean"] == pytest.approx(0.7)
    assert m["bwt"]["mean"] == pytest.approx(((0.4 - 0.5) + (0.4 - 0.6)) / 2)
    assert m["bwt"]["std"] == pytest.approx(math.sqrt(2 * 0.05 ** 2))
    assert m["general"]["g"]["mean"] == pytest.approx(-0.2)
    assert m["A_mean"][1] == pytest.approx([0.55, 0.0])
    assert summary["j"]["joint"] and summary["j"]["bwt"]["mean"] is None and summary["j"]["acc"]["mean"] == 0.8
    text = to_markdown(_results(), summary)
    assert "| m | 0.700 ± 0.000 | -0.150 ± 0.071 |" in text
    assert "| j (joint) | 0.800 | – |" in text
    assert "| m | 0 | t2 | 3 / 8 | 5 | 0 | 0 | 32 | 1.5 |" in text
