"""Multi-teacher distillation: one teacher per task or domain, routed by a field of each sample (as TRL's and verl's
2026 on-policy distillation trainers offer; the per-row objective is unchanged — GKD, arXiv 2306.13649, or the
on-policy reverse-KL advantage of Lu et al. 2025 — only the teacher that scores a row depends on the row).

``rl.teacher`` names a routing file (``.yaml``, ``.yml`` or ``.json``)::

    route_by: meta.domain          # the sample field that picks the teacher (meta.<key>)
    teachers:                      # route value -> teacher (model folder, relative to this file, or module:function)
      math: teachers/math
      code: teachers/code
    default: teachers/general      # optional: rows whose value is missing or not listed (else an error)

Each micro-batch is split by route (:meth:`ModalityAdapter.split` / ``collate``, so image and video tensors follow
their rows), every part is scored by its teacher, and the results are put back at the rows' supervised positions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from mmsft.models.adapters import ModelBatch
from mmsft.train.rollout_batches import gather_from_mask, scatter_to_mask


class RoutingError(ValueError):
    """A bad routing file or a row no teacher is routed to; the message names the file, key or sample."""


def read_routes(path: str | Path) -> tuple[str, dict[str, str], str | None]:
    """``(meta key, {route: teacher spec}, default spec)`` from a routing file; relative folders resolve against it."""
    path = Path(path)
    if not path.is_file():
        raise RoutingError(f"rl.teacher routing file {path} does not exist")
    try:
        raw = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (ValueError, yaml.YAMLError) as exc:
        raise RoutingError(f"rl.teacher routing file {path} cannot be parsed: {exc}") from None
    if not isinstance(raw, dict):
        raise RoutingError(f"{path}: expected a mapping with keys route_by, teachers[, default]")
    unknown = set(raw) - {"route_by", "teachers", "default"}
    if unknown:
        raise RoutingError(f"{path}: unknown keys {sorted(unknown)}; expected route_by, teachers, default")
    route_by = raw.get("route_by")
    if not isinstance(route_by, str) or not route_by.startswith("meta.") or len(route_by) <= 5:
        raise RoutingError(f"{path}: 'route_by' must be 'meta.<key>' (the sample field that picks the teacher), "
                           f"got {route_by!r}")
    teachers = raw.get("teachers")
    if not isinstance(teachers, dict) or not teachers:
        raise RoutingError(f"{path}: 'teachers' must be a non-empty mapping route value -> teacher, got {teachers!r}")

    def spec(value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise RoutingError(f"{path}: {key} must be a model folder or 'package.module:function', got {value!r}")
        local = path.parent / value
        return str(local) if ":" not in value and local.exists() else value

    routes = {str(k): spec(v, f"teachers.{k}") for k, v in teachers.items()}
    default = spec(raw["default"], "default") if raw.get("default") is not None else None
    return route_by[5:], routes, default


class RoutedTeacher:
    """Scores each row with the teacher its sample's route names; see the module docstring."""

    def __init__(self, adapter: Any, route_of: dict[str, str | None], scorers: dict[str, Any], default: Any,
                 where: str, key: str) -> None:
        self.adapter, self.route_of, self.scorers, self.default = adapter, route_of, scorers, default
        self.where, self.key = where, key

    def _teacher_of(self, sample_id: str) -> Any:
        route = self.route_of.get(sample_id)
        if route is not None and route in self.scorers:
            return route
        if self.default is not None:
            return "<default>"
        raise RoutingError(f"sample {sample_id!r} has meta.{self.key}={route!r}, which no teacher in {self.where} "
                           f"is routed to (routes: {sorted(self.scorers)}); add it or set 'default'")

    def _parts(self, batch: ModelBatch) -> list[tuple[list[int], Any, ModelBatch]]:
        groups: dict[str, list[int]] = {}
        for row, sample_id in enumerate(batch.sample_ids):
            groups.setdefault(self._teacher_of(sample_id), []).append(row)
        if len(groups) == 1:
            name, rows = next(iter(groups.items()))
            return [(rows, self._scorer(name), batch)]
        pieces = self.adapter.split(batch)
        return [(rows, self._scorer(name), self.adapter.collate([pieces[r] for r in rows], batch.padding_side))
                for name, rows in groups.items()]

    def _scorer(self, name: str) -> Any:
        return self.default if name == "<default>" else self.scorers[name]

    def _merge(self, batch: ModelBatch, parts: list[tuple[list[int], ModelBatch, torch.Tensor]]) -> torch.Tensor:
        rows_values: list[torch.Tensor | None] = [None] * len(batch.sample_ids)
        for rows, sub, values in parts:
            for row, vec in zip(rows, gather_from_mask(values, sub.loss_mask.to(values.device))):
                rows_values[row] = vec
        return scatter_to_mask(rows_values, batch.loss_mask.cpu())  # type: ignore[arg-type]

    def __call__(self, batch: ModelBatch) -> torch.Tensor:
        return self._merge(batch, [(rows, sub, fn(sub).cpu()) for rows, fn, sub in self._parts(batch)])

    def dist(self, batch: ModelBatch) -> torch.Tensor:
        return self._merge(batch, [(rows, sub, fn.dist(sub).cpu()) for rows, fn, sub in self._parts(batch)])

    def support(self, batch: ModelBatch, k: int, ids: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        id_parts, logp_parts = [], []
        for rows, fn, sub in self._parts(batch):
            sub_ids = None
            if ids is not None:
                sub_ids = scatter_to_mask([ids[r][batch.loss_mask[r].cpu()] for r in rows], sub.loss_mask.cpu()).long()
            got_ids, got_logp = fn.support(sub, k, sub_ids)
            id_parts.append((rows, sub, got_ids.float()))
            logp_parts.append((rows, sub, got_logp))
        return self._merge(batch, id_parts).long(), self._merge(batch, logp_parts)


class _DistOf:
    """Adapts a (scorer, dist scorer) pair so :class:`RoutedTeacher` can call ``.dist`` and ``.support`` on it."""

    def __init__(self, scorer: Any, dist: Any) -> None:
        self.scorer, self._dist = scorer, dist

    def __call__(self, batch: ModelBatch) -> torch.Tensor:
        return self.scorer(batch)

    def dist(self, batch: ModelBatch) -> torch.Tensor:
        if self._dist is None:
            raise RoutingError("a routed teacher returns no distribution (needed by the objective)")
        return self._dist(batch)

    def support(self, batch: ModelBatch, k: int, ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        support = getattr(self.scorer, "support", None)
        if support is None:
            raise RoutingError("a routed teacher has no support(batch, k, ids) method (needed for top-k distillation)")
        return support(batch, k, ids)


def routed_teacher(trainer: Any, policy: Any, path: str, needs_dist: bool) -> tuple[RoutedTeacher, Any]:
    """Load every teacher of a routing file; returns (scorer, dist scorer or None) like a single teacher."""
    from mmsft.data.loaders import load_dataset
    from mmsft.train.scorers import load_teacher

    key, routes, default_spec = read_routes(path)
    samples = list(trainer.train_samples)
    if trainer.cfg.mix.expert_path:
        samples += load_dataset(trainer.cfg.mix.expert_path)
    route_of: dict[str, str | None] = {}
    for sample in samples:
        value = sample.meta.get(key)
        value = None if value is None else str(value)
        if route_of.get(sample.id, value) != value:
            raise RoutingError(f"{sample.where()}: sample id {sample.id!r} appears twice with different "
                               f"meta.{key} values; ids must be unique for routing")
        route_of[sample.id] = value
    loaded: dict[str, _DistOf] = {}
    for route, spec in routes.items():
        loaded[route] = _DistOf(*load_teacher(trainer, policy, spec, needs_dist))
    default = _DistOf(*load_teacher(trainer, policy, default_spec, needs_dist)) if default_spec else None
    teacher = RoutedTeacher(trainer.adapter, route_of, loaded, default, path, key)
    return teacher, (teacher.dist if needs_dist else None)
