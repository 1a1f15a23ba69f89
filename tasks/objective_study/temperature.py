"""Measure a model's temperature-adjusted rollout entropy H_τ (AceReason-Nemotron 1.1, arXiv 2506.13284) and pick τ
for the next RL stage (:func:`mmsft.objectives.rl_controls.choose_temperature`)."""

from __future__ import annotations

from typing import Any, Sequence

import torch


@torch.no_grad()
def measure_entropy(model_dir: str, samples: Sequence[Any], tau: float, max_new_tokens: int = 64, n: int = 2,
                    seed: int = 0) -> float:
    """Mean over the model's own sampled tokens (at temperature τ) of the entropy of softmax(z/τ)."""
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.models.policy import Policy
    from mmsft.rollout import HFGenerateEngine, SamplingParams

    loaded = load_model(model_dir)
    adapter = build_adapter(loaded)
    model = loaded.model.eval()
    engine = HFGenerateEngine(lambda: model, adapter)
    prompts = [adapter.encode(s, with_target=False) for s in samples]
    rollouts = engine.generate(prompts, SamplingParams(n=n, max_new_tokens=max_new_tokens, temperature=tau, seed=seed))
    batch = adapter.collate([r.as_encoded() for r in rollouts])
    out = Policy(model)(batch.inputs, batch.loss_mask, with_entropy=True, temperature=tau,
                        vocab_subset=adapter.vocab_subset())
    mask = batch.loss_mask.float()
    return float((out.entropy * mask).sum() / mask.sum().clamp(min=1.0))


def pick_temperature(model_dir: str, samples: Sequence[Any], target: float = 0.3, low: float = 0.3,
                     high: float = 1.5, steps: int = 6, **kwargs: Any) -> tuple[float, list[tuple[float, float]]]:
    from mmsft.objectives.rl_controls import choose_temperature

    return choose_temperature(lambda tau: measure_entropy(model_dir, samples, tau, **kwargs), target, low, high, steps)
