"""A weight-free LIBERO teacher: the scripted oracle's action as a distribution over the action bins.

For each action dimension the teacher puts a discretised Gaussian over the ``n_bins`` bins, centred on the bin of
the oracle's action (:class:`envs.libero.oracle.ScriptedOracle`) with standard deviation ``sigma_bins`` bins::

    log π_T(b) = −(b − b*)² / (2σ²) − log Σ_b' exp(−(b' − b*)² / (2σ²))

``sigma_bins`` sets how sharp the teacher is: σ → 0 is the oracle's bin only (log-prob −∞ elsewhere: not allowed,
σ must be positive); σ = 2 (default) keeps ≈ 95 % of the mass within ±4 bins (±1.6 % of the action range with 256
bins), a soft target that gives the student's exact reverse KL (VLA-OPD, arXiv 2603.26666) a gradient towards the
oracle from every sampled bin. The agent loop records, per policy token, the teacher's log-prob of the sampled bin
(``teacher_logp``, for the ``opd`` advantage, arXiv 2306.13649) and the whole distribution (``teacher_dist``, for
exact KL) while the episode runs — the oracle reads privileged simulator state, so it cannot score afterwards.

:func:`recorded_teacher` is the ``rl.teacher`` entry for such runs (``rl.teacher:
tasks.libero.teacher:recorded_teacher``): the trainer builds teacher scorers from what the objective declares, and
this one states that the values come from the rollout instead.

:func:`libero_teacher` (``rl.teacher: tasks.libero.teacher:libero_teacher``) serves ``env.task_args.teacher``:
every task routed to a VLA model folder is scored by that model after the rollout (teacher and student must share
the tokenizer, the action statistics and the interface — a teacher whose statistics differ is refused, since the
same token would mean another action), and tasks routed to ``oracle`` keep the values recorded during the episode.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch


class OracleBinTeacher:
    """Discretised-Gaussian teacher distributions around oracle actions (see the module docstring)."""

    def __init__(self, action_tokenizer: Any, sigma_bins: float = 2.0) -> None:
        if not sigma_bins > 0:
            raise ValueError(f"teacher sigma_bins={sigma_bins!r}: expected a positive number of bins")
        self.action_tokenizer = action_tokenizer
        self.sigma = float(sigma_bins)
        self.n_bins = int(action_tokenizer.n_bins)

    def log_probs(self, actions: np.ndarray) -> torch.Tensor:
        """``(chunk × action_dim, n_bins)`` log-probabilities over the restricted vocabulary (ascending token ids),
        one row per action token in generation order, for oracle ``actions`` of shape ``(chunk, action_dim)``."""
        tok = self.action_tokenizer
        # positions in the restricted vocabulary (ascending ids); adjacent bins stay adjacent in either id order
        index = tok.bin_to_index(tok.to_bins(np.atleast_2d(actions))).reshape(-1)
        centres = torch.as_tensor(index, dtype=torch.float64)
        grid = torch.arange(self.n_bins, dtype=torch.float64)
        logits = -((grid[None, :] - centres[:, None]) ** 2) / (2 * self.sigma ** 2)
        return torch.log_softmax(logits, dim=-1).float()


class RecordedTeacher:
    """The ``rl.teacher`` scorer of runs whose teacher values are recorded during the episodes."""

    def __call__(self, batch: Any) -> torch.Tensor:
        raise RuntimeError("the LIBERO oracle teacher is recorded during the episodes (ScoredSequence.fields); it "
                           "cannot score sequences afterwards — use it with an environment task whose bridge records "
                           "it (task: libero, env.task_args.teacher_sigma_bins > 0)")

    def dist(self, batch: Any) -> torch.Tensor:
        return self(batch)


def recorded_teacher(ctx: Any) -> RecordedTeacher:
    """Factory for ``rl.teacher: tasks.libero.teacher:recorded_teacher``."""
    return RecordedTeacher()


_SEED = re.compile(r"/seed(\d+)/")


def task_of_sample(sample_id: str) -> int:
    """The LIBERO task of an agent-loop sample id (``libero/<split>/seed<task*1000+init>/...``)."""
    match = _SEED.search(sample_id)
    if match is None:
        raise ValueError(f"sample id {sample_id!r} does not name a LIBERO level (expected '/seed<N>/')")
    return int(match.group(1)) // 1000


def load_vla_teacher(folder: str, ctx: Any) -> Any:
    """A frozen VLA teacher over the student's restricted vocabulary; refused unless it shares the student's
    tokenizer, action statistics and (when both recorded one) interface."""
    from mmsft.models.loading import load_model
    from mmsft.models.policy import Policy
    from mmsft.train import scorers
    from tasks.libero.prompt import VLAInterface

    student = ctx.loaded
    teacher = load_model(folder, dtype=ctx.cfg.model.dtype)
    scorers.check_same_tokenizer(student.processor, teacher.processor, folder)
    if teacher.action_tokenizer is None:
        raise ValueError(f"teacher {folder!r} has no action statistics (action_tokenizer.json); a VLA teacher must "
                         "use the student's")
    student.action_tokenizer.check_compatible(teacher.action_tokenizer)
    mine = VLAInterface.of_model(student.action_tokenizer, "the student's action_tokenizer.json")
    theirs = VLAInterface.of_model(teacher.action_tokenizer, f"{folder}/action_tokenizer.json")
    if mine is not None and theirs is not None and mine != theirs:
        raise ValueError(f"teacher {folder!r} was trained with another prompt interface ({theirs.to_dict()}) than "
                         f"the student ({mine.to_dict()}); it would score prompts it never saw")
    teacher.model.to(ctx.device).eval()
    for parameter in teacher.model.parameters():
        parameter.requires_grad_(False)
    temperature = ctx.cfg.rl.temperature if ctx.cfg.rl.temperature > 0 else 1.0
    make = getattr(scorers, "policy_scorer", None) or getattr(scorers, "PolicyScorer")
    policy = Policy(teacher.model, chunk_size=ctx.cfg.model.logprob_chunk_size)
    return (make(policy, ctx.device, ctx.vocab_subset, temperature),
            make(policy, ctx.device, ctx.vocab_subset, temperature, dist=True))


class RoutedTeacher:
    """Scores each row with the teacher of its task; rows of oracle-routed tasks get zeros (their recorded values
    replace them)."""

    def __init__(self, adapter: Any, routes: dict[int, str], scorers: dict[str, tuple[Any, Any]]) -> None:
        self.adapter, self.routes, self.scorers = adapter, routes, scorers

    def _score(self, batch: Any, which: int) -> torch.Tensor:
        groups: dict[str, list[int]] = {}
        for row, sample_id in enumerate(batch.sample_ids):
            task = task_of_sample(sample_id)
            if task not in self.routes:
                raise ValueError(f"sample {sample_id!r}: task {task} has no teacher in env.task_args.teacher")
            groups.setdefault(self.routes[task], []).append(row)
        out: torch.Tensor | None = None
        pieces = self.adapter.split(batch) if len(groups) > 1 else None
        for route, rows in groups.items():
            if route == "oracle":
                continue
            sub = batch if pieces is None else self.adapter.collate([pieces[r] for r in rows], batch.padding_side)
            values = self.scorers[route][which](sub).cpu()
            if out is None:
                out = torch.zeros((*batch.loss_mask.shape, *values.shape[2:]), dtype=torch.float32)
            for k, row in enumerate(rows):
                positions = batch.loss_mask[row].cpu().nonzero(as_tuple=True)[0]
                sub_positions = sub.loss_mask[k if pieces is not None else row].cpu().nonzero(as_tuple=True)[0]
                out[row, positions] = values[k if pieces is not None else row, sub_positions].float()
        if out is None:  # every row is oracle-routed: the recorded values are used
            shape = tuple(batch.loss_mask.shape) + ((len(self.adapter.vocab_subset()),) if which else ())
            out = torch.zeros(shape)
        return out

    def __call__(self, batch: Any) -> torch.Tensor:
        return self._score(batch, 0)

    def dist(self, batch: Any) -> torch.Tensor:
        return self._score(batch, 1)


def libero_teacher(ctx: Any) -> Any:
    """Factory for ``rl.teacher: tasks.libero.teacher:libero_teacher`` (routes of ``env.task_args.teacher``)."""
    from tasks.libero.env_task import teacher_routes

    args = dict(ctx.cfg.env.task_args or {})
    task_ids = [int(t) for t in args.get("task_ids", range(10))]
    routes = teacher_routes(args.get("teacher"), task_ids, float(args.get("teacher_sigma_bins", 0.0)))
    if not routes:
        raise ValueError("rl.teacher tasks.libero.teacher:libero_teacher needs env.task_args.teacher ('oracle', a "
                         "VLA model folder, or {task id: oracle | folder, default: ...})")
    folders = sorted({r for r in routes.values() if r != "oracle"})
    if not folders:
        return RecordedTeacher()
    return RoutedTeacher(ctx.adapter, routes, {f: load_vla_teacher(f, ctx) for f in folders})
