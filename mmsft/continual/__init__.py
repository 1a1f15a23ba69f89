"""Continual post-training experiments: an ordered task sequence, several methods and seeds, the accuracy matrix
A[stage, task] with forgetting measured by default (average accuracy, BWT, FWT, plasticity, forgetting, general-probe
deltas; mean ± std over seeds), resumable per (method, seed, stage). Each method expands to a pipeline
(:mod:`mmsft.pipeline`) plus stage hooks: RIF-RFT's rollout filter (:mod:`mmsft.data.selection`), PaST's skill
injection (:mod:`mmsft.continual.past`), multi-task data. Lai et al., arXiv 2507.05386; Tang et al., arXiv
2601.11258. See docs/continual.md.

Python::

    from mmsft.continual import run_experiment, render
    result = run_experiment("experiment.yaml", ["seeds=[0]"])
    result.results["summary"]["sft"]["bwt"]      # {"mean": ..., "std": ..., "n": ...}
"""

from mmsft.continual.methods import METHODS, MethodPlan, PlanContext, register_method
from mmsft.continual.metrics import general_deltas, joint_metrics, mean_std, sequence_metrics
from mmsft.continual.report import render
from mmsft.continual.runner import ContinualPipeline, ExperimentResult, plan_runs, run_experiment
from mmsft.continual.spec import ExperimentSpec, load_experiment

__all__ = ["METHODS", "ContinualPipeline", "ExperimentResult", "ExperimentSpec", "MethodPlan", "PlanContext",
           "general_deltas", "joint_metrics", "load_experiment", "mean_std", "plan_runs", "register_method", "render",
           "run_experiment", "sequence_metrics"]
