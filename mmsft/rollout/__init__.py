"""Rollout engines (HF ``generate`` by default) behind :class:`RolloutEngine`."""

from mmsft.rollout.engine import HFGenerateEngine, Rollout, RolloutEngine, SamplingParams

__all__ = ["HFGenerateEngine", "Rollout", "RolloutEngine", "SamplingParams"]
