"""Evaluation metrics: calibration (ECE, reliability diagrams), self-ensembling over prompt variants, and output
diversity (distinct-n, EAD, embedding cosine). Pure functions here; the evaluators that compute them from a model
folder live in :mod:`mmsft.eval.metrics.evaluators` (registered as ``calibration`` and ``diversity``)."""

from mmsft.eval.metrics.calibration import ReliabilityBin, ece, reliability_bins, reliability_diagram
from mmsft.eval.metrics.diversity import (distinct_n, ead, ead_average, embedding_diversity, ngrams,
                                          pairwise_cosine_mean)
from mmsft.eval.metrics.ensemble import COMBINE_METHODS, combine

__all__ = ["COMBINE_METHODS", "ReliabilityBin", "combine", "distinct_n", "ead", "ead_average", "ece",
           "embedding_diversity", "ngrams", "pairwise_cosine_mean", "reliability_bins", "reliability_diagram"]
