"""Data selection and curriculum: registered selectors enabled with ``data.selector`` / ``data.selector_args``.

Offline (run once on the training set with the model about to be trained): ``s3ft`` (arXiv 2502.08130), ``grape``
(arXiv 2502.04194), ``stat`` (arXiv 2510.10023), ``branching_filter`` (arXiv 2604.01702), ``random``.
Online (per step, on a drawn candidate pool, from a no-grad pass of the current model): ``uds``
(arXiv 2510.16882), ``q_tuning`` (arXiv 2509.23873). Budget utilities (:mod:`mmsft.data.selectors.budget`):
the SFT–RL overlap splitter (arXiv 2604.13515) and the SFT / preference budget split (arXiv 2502.11284).
See docs/data_selection.md.
"""

from mmsft.data.selectors import grape, offline, qtuning, s3ft, stat, uds  # noqa: F401  (register the built-ins)
from mmsft.data.selectors.base import (SELECTORS, Decision, OnlineDecision, SelectionEnv, TokenStats,
                                       register_selector)

__all__ = ["SELECTORS", "Decision", "OnlineDecision", "SelectionEnv", "TokenStats", "register_selector"]
