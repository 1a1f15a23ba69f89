"""Few-shot image classification with rule-based RL: CLS-RL and No-Thinking-CLS-RL.

Implements the task layer of CLS-RL (Li et al., "To Think or Not To Think: ... Rule-Based RL for image
classification", arXiv 2503.16188) over CoOp's few-shot and base-to-new protocol (Zhou et al., "Learning to Prompt
for Vision-Language Models", IJCV 2022): dataset loaders, the k-shot sampler, option lists, prompts, rewards
(registered in :mod:`mmsft.rewards` on import: ``cls_accuracy``, ``cls_format``, ``cls_nothink_equality``), the
lenient evaluation parser, JSONL builders, and the embedded shapes world with its pretrained tiny base model.
See ``docs/cls_rl.md``.
"""

from tasks.image_classification import rewards as _rewards  # noqa: F401  (registers the rewards)
from tasks.image_classification.base_model import ensure_shapes_base
from tasks.image_classification.builder import (
    PROMPT_MODES, SPLIT_NAMES, FewShotSplits, ShapesWorldSource, build_fewshot_splits, make_row,
)
from tasks.image_classification.loaders import (
    ClassificationDataError, ClassificationDataset, load_classification_dataset, load_hf_image_dataset,
    load_image_folder,
)
from tasks.image_classification.prompts import build_question, format_prompt, question_prefix, solution
from tasks.image_classification.rewards import (
    REWARD_PRESETS, cls_accuracy, cls_format, cls_nothink_equality, evaluate_predictions, extract_answer,
    harmonic_mean, is_correct_lenient, parse_eval_answer,
)
from tasks.image_classification.sampling import build_options, option_count, sample_k_shot, split_base_new

__all__ = [
    "PROMPT_MODES", "REWARD_PRESETS", "SPLIT_NAMES", "ClassificationDataError", "ClassificationDataset",
    "FewShotSplits", "ShapesWorldSource", "build_fewshot_splits", "build_options", "build_question",
    "cls_accuracy", "cls_format", "cls_nothink_equality", "ensure_shapes_base", "evaluate_predictions",
    "extract_answer", "format_prompt", "harmonic_mean", "is_correct_lenient", "load_classification_dataset",
    "load_hf_image_dataset", "load_image_folder", "make_row", "option_count", "parse_eval_answer",
    "question_prefix", "sample_k_shot", "solution", "split_base_new",
]
