"""Reward registry: floats and dicts of parts, weights, and errors naming the reward and the sample."""

from __future__ import annotations

import pytest

from mmsft.data.schema import Message, Part, Sample
from mmsft.rewards import RewardError, compute_rewards, get_reward, register_reward


def _samples(n: int) -> list[Sample]:
    return [Sample(id=f"s{i}", messages=[Message("user", (Part("text", text="q"),))], answer="red") for i in range(n)]


@register_reward("test_exact")
def _exact(samples, completions, **_):
    return [1.0 if c.strip() == s.answer else 0.0 for s, c in zip(samples, completions)]


@register_reward("test_parts")
def _parts(samples, completions, **_):
    return [{"format": 0.5, "length": -0.1 * len(c)} for c in completions]


@register_reward("test_broken")
def _broken(samples, completions, **_):
    return [float("nan") if c == "bad" else 0.0 for c in completions]


def test_weighted_combination_and_parts():
    result = compute_rewards(["test_exact", "test_parts"], [2.0, 1.0], _samples(2), ["red", "blue!"])
    assert result.total == pytest.approx([2.0 + 0.5 - 0.3, 0.0 + 0.5 - 0.5])
    assert result.parts["test_parts/format"] == [0.5, 0.5]
    assert result.parts["test_exact"] == [1.0, 0.0]
    assert result.means()["reward/total"] == pytest.approx((2.2 + 0.0) / 2)


def test_errors_name_reward_and_sample():
    with pytest.raises(RewardError, match=r"reward 'test_broken' on sample 's1': value is nan"):
        compute_rewards(["test_broken"], None, _samples(2), ["ok", "bad"])
    with pytest.raises(KeyError, match="Did you mean 'test_exact'"):
        get_reward("test_exat")
    with pytest.raises(ValueError, match="2 reward weights for 1 rewards"):
        compute_rewards(["test_exact"], [1.0, 2.0], _samples(1), ["red"])
