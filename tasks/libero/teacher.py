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
"""

from __future__ import annotations

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
        """``(chunk × action_dim, n_bins)`` log-probabilities, one row per action token in generation order, for
        oracle ``actions`` of shape ``(chunk, action_dim)``."""
        bins = self.action_tokenizer.to_bins(np.atleast_2d(actions)).reshape(-1)
        centres = torch.as_tensor(bins, dtype=torch.float64)
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
