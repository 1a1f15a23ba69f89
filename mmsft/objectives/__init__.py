"""Pure tensor objectives and their registries (see :mod:`mmsft.objectives.registry`).

Importing this package registers every built-in entry.
"""

from mmsft.objectives import kl as _kl  # noqa: F401  (registers KL estimators)
from mmsft.objectives import sft as _sft  # noqa: F401  (registers sft, dft)
from mmsft.objectives.aggregation import AGG_MODES, agg_loss
from mmsft.objectives.batch import StepNormalizer, TokenBatch
from mmsft.objectives.registry import (
    ADVANTAGES,
    KL_ESTIMATORS,
    LOSSES,
    get_advantage,
    get_kl,
    get_loss,
    register_advantage,
    register_kl,
    register_loss,
)

__all__ = [
    "AGG_MODES", "agg_loss", "StepNormalizer", "TokenBatch", "ADVANTAGES", "KL_ESTIMATORS", "LOSSES",
    "get_advantage", "get_kl", "get_loss", "register_advantage", "register_kl", "register_loss",
]
