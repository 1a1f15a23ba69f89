"""Trainer hooks of PEFT tuners that need more than a forward pass (:mod:`mmsft.peft_methods`):

* an auxiliary loss per micro-batch — LoRAMoE's localised balancing constraint, from the gates of the forward just
  run and each sample's ``meta.task_type`` (0 world knowledge, 1 downstream task; the SFT producer passes it as the
  ``task_type`` batch field); divided by the number of micro-batches so the step's sum is one term;
* a call after every optimizer step — SpIEL's periodic drop-and-grow of the sparse index set.

A model without such a tuner costs one attribute lookup per call.
"""

from __future__ import annotations

from typing import Any

import torch


def _tuner(model: Any) -> Any:
    base = getattr(model, "base_model", None)
    return base if base is not None and hasattr(base, "peft_config") else None


def peft_aux_loss(model: Any, batch: Any, micro_batches: int, metrics: dict[str, float]) -> torch.Tensor | float:
    tuner = _tuner(model)
    aux = getattr(tuner, "aux_loss", None) if tuner is not None else None
    if aux is None:
        return 0.0
    config = tuner.peft_config[tuner.active_adapters[0]]
    if getattr(config, "blc_weight", 0.0) <= 0:
        return 0.0
    task_type = batch.fields.get("task_type")
    if task_type is None:
        from mmsft.config import ConfigError

        raise ConfigError("lora.method_args.blc_weight > 0 (LoRAMoE localised balancing) needs meta.task_type (0: "
                          "world knowledge, 1: downstream task) on every training sample")
    mask = batch.inputs.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(batch.inputs["input_ids"])
    value = aux(mask, task_type)
    metrics["peft_aux_loss"] = float(value.detach())  # the trainer logs its mean over the step's micro-batches
    return value / max(micro_batches, 1)


def peft_after_step(model: Any, step: int, optimizer: Any) -> dict[str, float]:
    tuner = _tuner(model)
    hook = getattr(tuner, "on_optimizer_step", None) if tuner is not None else None
    if hook is None:
        return {}
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
    return hook(step, inner)
