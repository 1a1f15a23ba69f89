"""Golden decisions of the data selectors on fixed scores (no model): Q-Tuning quadrants, bisection and token
pruning; UDS utility, diversity, FJLT and top-k; GRAPE, S3FT, STAT, the branching filter, random; budget knobs."""

from __future__ import annotations

import math

import pytest
import torch

from mmsft.data.schema import DataError, sample_from_dict
from mmsft.data.selectors import SelectionEnv, TokenStats
from mmsft.data.selectors import grape as grape_mod
from mmsft.data.selectors import s3ft as s3ft_mod
from mmsft.data.selectors.base import Decision
from mmsft.data.selectors.budget import budget_split, split_sft_rl
from mmsft.data.selectors.hook import apply_decisions, count_reasons
from mmsft.data.selectors.offline import BranchingArgs, RandomArgs, branching_filter, branching_ratio, random_subset
from mmsft.data.selectors.qtuning import QTuningArgs, QTuningSelector, bisect_quadrants, prune_tokens, quadrants
from mmsft.data.selectors.stat import STATArgs, skill_profile, stat
from mmsft.data.selectors.uds import FJLT, UDSArgs, UDSSelector, nuclear_norm, top_k, uds_scores

PPL = torch.tensor([9.0, 8.0, 1.0, 2.0, 5.0])
ENT = torch.tensor([3.0, 0.1, 0.2, 2.5, 1.5])


def _sample(i, target="t", **meta):
    return sample_from_dict({"id": f"s{i}", "messages": [{"role": "user", "content": f"q{i}"},
                                                         {"role": "assistant", "content": target}],
                             "answer": meta.pop("answer", None), "meta": meta}, f"mem:{i}")


def test_qtuning_quadrants_golden():
    # level 0.4: PPL quantiles 3.8 / 6.2 → high {9, 8}, low {1, 2};
    #            Ent quantiles 0.98 / 1.9 → high {3, 2.5}, low {.1, .2}
    assert quadrants(PPL, ENT, 0.4) == ["q1", "q2", "q3", "q4", "middle"]
    # level 0.25: PPL quantiles 2 / 8 and Ent 0.2 / 2.5 (strict) → only sample 0 is high on both
    assert quadrants(PPL, ENT, 0.25) == ["q1", "middle", "middle", "middle", "middle"]


def test_qtuning_bisection_golden():
    # kept fraction is 0 for level <= 0.25 and 0.4 above: ratio 0.4 never exceeds → level climbs toward 0.5
    labels, level = bisect_quadrants(PPL, ENT, 0.4, iterations=10)
    assert labels == ["q1", "q2", "q3", "q4", "middle"] and level == pytest.approx(0.5 - 0.25 / 2 ** 9)
    # ratio 0.1: 0.25 keeps 0 (go up), then every level above keeps 0.4 (go down) → converges to 0.25 from above
    labels, level = bisect_quadrants(PPL, ENT, 0.1, iterations=10)
    assert labels == ["q1", "q2", "q3", "q4", "middle"] and level == pytest.approx(0.25 + 0.25 / 2 ** 9)


def test_qtuning_token_pruning_golden():
    logp = torch.log(torch.tensor([0.5, 0.1, 0.9, 0.8]))
    # PPL_i = [2, 10, 1.11, 1.25]; λ=.5: s = [6, 6.56, 6.18, 1.18] → keep the 2 lowest: tokens 3, 0
    assert prune_tokens(logp, 0.5, 0.5).tolist() == [True, False, False, True]
    assert prune_tokens(logp, 0.5, 0.0).tolist() == [False, False, True, True]  # raw PPL
    assert prune_tokens(logp[:1], 0.5, 0.5).tolist() == [True]  # at least one token


def test_qtuning_selector_decision():
    stats = [TokenStats(logp=torch.full((3,), -math.log(p)), entropy=torch.full((3,), e))
             for p, e in zip(PPL.tolist(), ENT.tolist())]
    decision = QTuningSelector(QTuningArgs(sample_ratio=0.4), SelectionEnv()).select(stats, 0)
    assert decision.keep == [1, 3] and set(decision.token_keep) == {1}
    assert decision.reasons == {"dropped_q1_noise": 1, "kept_q2_pruned": 1, "dropped_q3_redundant": 1,
                                "kept_q4_calibration": 1, "dropped_middle": 1}
    assert int(decision.token_keep[1].sum()) == 1  # ⌊0.5 · 3⌋


def test_uds_utility_diversity_topk_golden():
    assert nuclear_norm(torch.diag(torch.tensor([3.0, 4.0]))) == pytest.approx(7.0)
    assert nuclear_norm(torch.ones(2, 5)) == pytest.approx(math.sqrt(10))  # rank 1: σ = ‖1‖₂·‖1‖₂ = √2·√5
    utility = torch.tensor([7.0, 2.0, 5.0])
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    memory = torch.tensor([[0.0, 0.0]])
    scores, div = uds_scores(utility, emb, memory, alpha=1.0)
    assert div.tolist() == [0.0, 5.0, 1.0] and scores.tolist() == [7.0, 7.0, 6.0]
    assert top_k(scores, 1) == [0]  # tie → earlier candidate
    assert top_k(uds_scores(utility, emb, memory, alpha=2.0)[0], 1) == [1]
    assert uds_scores(utility, emb, torch.zeros(0), alpha=1.0)[1].tolist() == [0.0, 0.0, 0.0]  # empty memory


def test_fjlt_is_an_isometry_when_nothing_is_dropped():
    logits = torch.randn(5, 12, generator=torch.Generator().manual_seed(0))
    full = FJLT(vocab=12, t_max=8, r1=8, r2=12, seed=3)
    assert float(full(logits).norm()) == pytest.approx(float(logits.double().norm()), rel=1e-9)
    sketch = FJLT(vocab=12, t_max=8, r1=4, r2=3, seed=3)
    assert sketch(logits).shape == (2 * 4 * 3,) and torch.equal(sketch(logits), sketch(logits.clone()))
    with pytest.raises(ValueError, match="r1 <= t_max"):
        FJLT(vocab=12, t_max=4, r1=8, r2=3, seed=0)


def test_uds_selector_memory_and_state():
    gen = torch.Generator().manual_seed(1)
    stats = [TokenStats(torch.zeros(3), torch.zeros(3), logits=torch.randn(3, 16, generator=gen) * (i + 1))
             for i in range(4)]
    args = UDSArgs(pool=2, r1=4, r2=4, t_max=8, queue=3)
    selector = UDSSelector(args, SelectionEnv(seed=0))
    first = selector.select(stats, 0)
    assert first.keep == [2, 3]  # largest logits scale → largest nuclear norm; empty memory
    assert len(selector.memory) == 2
    selector.select(stats, 1)
    assert len(selector.memory) == 3  # FIFO capped at queue
    clone = UDSSelector(args, SelectionEnv(seed=0))
    clone.load_state_dict(selector.state_dict())
    assert clone.select(stats, 2).keep == selector.select(stats, 2).keep


def test_grape_golden_on_fixed_scores(monkeypatch):
    samples = [_sample(0, "gold0", candidates=["a", "b"]), _sample(1, "x", group="g"), _sample(2, "y", group="g"),
               _sample(3, "plain")]
    # queries in order: s0 gold0, a, b; then grouped rows s1, s2
    monkeypatch.setattr(grape_mod, "mean_logps", lambda qs, env: [-2.0, -1.0, -1.0, -3.0, -0.5][:len(qs)])
    decisions = grape_mod.grape(samples, grape_mod.GrapeArgs(), SelectionEnv())
    assert [(d.keep, d.reason, d.target) for d in decisions] == [
        (True, "kept_most_likely_candidate", "a"),  # tie a / b → earlier
        (False, "dropped_group_lower", None), (True, "kept_group_top", None), (True, "kept_no_candidates", None)]
    with pytest.raises(DataError, match="meta.candidates"):
        grape_mod.grape([_sample(0, candidates="a")], grape_mod.GrapeArgs(), SelectionEnv())


def test_s3ft_rule_golden(monkeypatch):
    samples = [_sample(0, "gold", answer="4"), _sample(1, "gold", answer="5"), _sample(2, "gold", answer="6")]
    outputs = iter([["4", "no", "no"], ["5", "nope"]])  # own answers; then paraphrases of samples 1 and 2
    monkeypatch.setattr(s3ft_mod, "_generate", lambda env, qs, n: next(outputs))
    decisions = s3ft_mod.s3ft(samples, s3ft_mod.S3FTArgs(), SelectionEnv())
    assert [(d.reason, d.target) for d in decisions] == [("kept_own", "4"), ("kept_paraphrase", "5"),
                                                         ("kept_gold", None)]
    assert s3ft_mod.answer_contains(samples[0], "so the answer is 4.") and not s3ft_mod.answer_exact(samples[0], "44")


def test_stat_weight_and_resample_golden():
    samples = [_sample(0, skills=["a"]), _sample(1, skills=["b"]), _sample(2, skills=["a", "b"]),
               _sample(3, skills=["c"])]
    decisions = stat(samples, STATArgs(profile={"a": 3, "b": 1, "z": 2}, mode="weight"), SelectionEnv())
    # p(a) = .75, p(b) = .25 (z has no sample); raw mass [.75, .25, 1, 0] → mean over kept 2/3
    assert [d.weight for d in decisions[:3]] == pytest.approx([1.125, 0.375, 1.5])
    assert not decisions[3].keep and decisions[3].reason == "dropped_no_missing_skill"
    assert decisions[0].scores["profile_skills_without_samples"] == 1
    drawn = stat(samples, STATArgs(profile={"a": 3, "b": 1}, size=4000), SelectionEnv(seed=1))
    copies = [d.scores["copies"] for d in drawn]
    assert sum(copies) == 4000 and copies[3] == 0
    # expected shares: idx0 .75/2, idx1 .25/2, idx2 .75/2 + .25/2; sd ≤ .008 → 4 sd tolerance
    assert [c / 4000 for c in copies[:3]] == pytest.approx([0.375, 0.125, 0.5], abs=0.032)
    assert skill_profile([["a", "b"], ["a"]]) == {"a": 2 / 3, "b": 1 / 3}
    with pytest.raises(DataError, match="profile"):
        stat(samples, STATArgs(), SelectionEnv())


def test_branching_filter_and_random_golden():
    text = "Let me think.\n\nPerhaps x.\n\nAlternatively y.\n\nSo z."
    assert branching_ratio(text) == 0.5 and branching_ratio("") == 0.0
    samples = [_sample(0, text), _sample(1, "Direct.\n\nDone."), _sample(2, "Wait.\n\nHmm maybe."), _sample(3, "ok")]
    kept = [d.keep for d in branching_filter(samples, BranchingArgs(keep_fraction=0.5), SelectionEnv())]
    assert kept == [False, True, False, True]  # ratios .5, 0, 1, 0
    picks = [d.keep for d in random_subset(samples, RandomArgs(fraction=0.5), SelectionEnv(seed=3))]
    assert sum(picks) == 2 and picks == [d.keep for d in random_subset(samples, RandomArgs(0.5), SelectionEnv(seed=3))]
    assert branching_ratio("perhaps " * 100_000) == 1.0  # one long step: linear time


def test_apply_decisions_counts_and_copies():
    samples = [_sample(0), _sample(1), _sample(2)]
    decisions = [Decision(0, True, "kept_a", copies=3), Decision(1, False, "dropped_b"),
                 Decision(2, True, "kept_a", target="new", weight=0.5)]
    out = apply_decisions(samples, decisions)
    assert [s.id for s in out] == ["s0", "s0@2", "s0@3", "s2"]
    assert out[3].target.text == "new" and out[3].weight == 0.5
    assert count_reasons(decisions) == {"select/kept": 2, "select/dropped": 1, "select/kept_a": 2,
                                        "select/dropped_b": 1, "select/trained_rows": 4}
    with pytest.raises(DataError, match="dropped every"):
        apply_decisions(samples[:1], [Decision(0, False, "x")])


def test_budget_knobs_golden():
    pool = [f"p{i}" for i in range(10)]
    sft, rl, rho = split_sft_rl(pool, 4, 4, overlap=0.5, seed=0)
    assert len(sft) == 4 and len(rl) == 4 and rho == 0.5 and len(set(rl) & set(sft)) == 2
    assert split_sft_rl(pool, 4, 6, overlap=0.0)[2] == 0.0
    assert split_sft_rl(pool, 4, 4, overlap=1.0)[2] == 1.0
    with pytest.raises(ValueError, match="distinct prompts"):
        split_sft_rl(pool, 8, 4, overlap=0.0)
    assert budget_split(10_000, sft_fraction=0.05, min_sft_fraction=0.1) == (1000, 9000)
    assert budget_split(10_000, sft_fraction=0.5, cost_sft=2.0, cost_pref=1.0) == (2500, 5000)
    assert budget_split(500, sft_fraction=0.2) == (500, 0)  # small budget: all SFT


def test_bad_selector_inputs_name_the_place(tmp_path):
    from mmsft.data.selectors.stat import load_profile

    with pytest.raises(DataError, match="no such file"):
        stat([_sample(0, skills=["a"])], STATArgs(profile_path=str(tmp_path / "none.json")), SelectionEnv())
    bad = tmp_path / "diag.jsonl"
    bad.write_text('{"missing_skills": ["a"]}\n{"missing": "b"}\n')
    with pytest.raises(DataError, match=r"diag.jsonl:2: expected an object with a 'missing_skills' list"):
        load_profile(str(bad))
    with pytest.raises(DataError, match="meta.skills must be a list"):
        stat([_sample(0, skills="a")], STATArgs(profile={"a": 1}), SelectionEnv())
    with pytest.raises(DataError, match="count"):
        stat([_sample(0, skills=["a"])], STATArgs(profile={"a": float("nan")}), SelectionEnv())
    with pytest.raises(DataError, match="no training sample carries"):
        stat([_sample(0, skills=["a"])], STATArgs(profile={"b": 1}), SelectionEnv())


def test_task_type_must_be_zero_or_one(tiny_models, tmp_path):
    import json

    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    rows = [{"id": f"t{i}", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
             "meta": {"task_type": 2 if i == 1 else 0}} for i in range(2)]
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(None, [f"model.name_or_path={tiny_models['text']}", f"data.train_path={data}",
                             f"train.output_dir={tmp_path / 'run'}", "train.micro_batch_size=2", "train.max_steps=1",
                             "train.progress=false", "train.tensorboard=false", "data.shuffle=false"])
    with pytest.raises(DataError, match=r"t.jsonl:2 .*'t1'.*task_type must be 0"):
        Trainer(cfg).train()
