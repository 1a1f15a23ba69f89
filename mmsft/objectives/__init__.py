"""Pure tensor objectives and their registries (see :mod:`mmsft.objectives.registry`).

Importing this package registers every built-in entry.
"""

from mmsft.objectives import advantages as _advantages  # noqa: F401  (registers advantage estimators)
from mmsft.objectives import distill as _distill  # noqa: F401  (reverse_kl_exact, gkd, distill_topk_kl)
from mmsft.objectives import hybrid as _hybrid  # noqa: F401  (registers chord)
from mmsft.objectives import kl as _kl  # noqa: F401  (registers KL estimators)
from mmsft.objectives import lfu as _lfu  # noqa: F401  (registers lfu)
from mmsft.objectives import opd as _opd  # noqa: F401  (registers opd_reinforce, teacher_ce_exact)
from mmsft.objectives import policy_losses as _policy_losses  # noqa: F401  (registers ppo_clip, gspo, cispo)
from mmsft.objectives import sft as _sft  # noqa: F401  (registers sft, dft)
from mmsft.objectives import srppo as _srppo  # noqa: F401  (registers srppo, srppo_gae)
from mmsft.objectives import sft_variants as _sft_variants  # noqa: F401  (asft, otr, curio_sft, poft, masked_ft, soft, ift)
from mmsft.objectives.advantages import AdvantageInputs, group_stats
from mmsft.objectives.aggregation import AGG_MODES, agg_loss
from mmsft.objectives.batch import StepNormalizer, TokenBatch
from mmsft.objectives.compose import KLTerm, Objective
from mmsft.objectives.registry import (
    ADVANTAGES,
    KL_ESTIMATORS,
    LOSSES,
    args_type,
    get_advantage,
    get_kl,
    get_loss,
    register_advantage,
    register_kl,
    register_loss,
)

__all__ = [
    "AdvantageInputs", "group_stats", "AGG_MODES", "agg_loss", "StepNormalizer", "TokenBatch", "KLTerm", "Objective",
    "ADVANTAGES", "KL_ESTIMATORS", "LOSSES", "args_type", "get_advantage", "get_kl", "get_loss", "register_advantage",
    "register_kl", "register_loss",
]
