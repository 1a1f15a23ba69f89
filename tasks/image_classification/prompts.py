"""CLS-RL's prompts, verbatim (Li et al., arXiv 2503.16188; ``grpo.py``, ``grpo_direct.py``,
``test_qwen2vl_fewshot.py`` and ``few-shot-data.ipynb`` of github minglllli/CLS-RL).

The user turn is the image followed by the text below; there is no system prompt in CLS-RL (mmsft's tiny chat
template adds its default system turn, as Qwen2-VL's template does).

* question: ``"{prefix}\\nPlease choose one from list [ c1, c2, ..., ck]."``;
* thinking, training: ``"{Question}\\n Please output the thinking process in <think> </think> and final answer in
  <answer> </answer> tags."``; evaluation: ``"{Question} First output the thinking process in <think> </think> and
  final answer in <answer> </answer> tags."``;
* no-thinking, training: ``"{Question}\\n Please directly output the answer."``; evaluation: ``"{Question} Please
  directly output the answer name."``.
"""

from __future__ import annotations

from typing import Sequence

DEFAULT_PREFIX = "What type of object is in the photo?"
"""Question prefix of every dataset without a specific one."""

DATASET_PREFIXES: dict[str, str] = {
    "eurosat": "What type of object is in the centered satellite photo?",
    "ucf101": "What actions is the person performing in the photo?",
    "dtd": "What type of texture is in the photo?",
    "fgvc": "What type of aircraft is in the photo?",
    "shapes": "What colour and shape is the object in the photo?",
}
"""CLS-RL's dataset-specific prefixes (EuroSAT, UCF101, DTD, FGVC-Aircraft), plus ours for the shapes world, whose
classes are colour-shape pairs."""

THINK_TRAIN = ("{Question}\n Please output the thinking process in <think> </think> and final answer in "
               "<answer> </answer> tags.")
THINK_EVAL = ("{Question} First output the thinking process in <think> </think> and final answer in "
              "<answer> </answer> tags.")
NOTHINK_TRAIN = "{Question}\n Please directly output the answer."
NOTHINK_EVAL = "{Question} Please directly output the answer name."

TEMPLATES: dict[tuple[str, str], str] = {
    ("think", "train"): THINK_TRAIN,
    ("think", "eval"): THINK_EVAL,
    ("nothink", "train"): NOTHINK_TRAIN,
    ("nothink", "eval"): NOTHINK_EVAL,
}
"""``(mode, stage)`` → template with a ``{Question}`` slot."""

MODES: tuple[str, ...] = ("think", "nothink")
STAGES: tuple[str, ...] = ("train", "eval")


def question_prefix(dataset: str | None = None) -> str:
    """CLS-RL's prefix for ``dataset`` (case-insensitive key of :data:`DATASET_PREFIXES`), else the default."""
    if dataset is None:
        return DEFAULT_PREFIX
    return DATASET_PREFIXES.get(dataset.lower(), DEFAULT_PREFIX)


def build_question(options: Sequence[str], prefix: str = DEFAULT_PREFIX) -> str:
    """``"{prefix}\\nPlease choose one from list [ c1, c2, ..., ck]."``"""
    if not options:
        raise ValueError("the option list is empty")
    return f"{prefix}\nPlease choose one from list [ {', '.join(options)}]."


def format_prompt(question: str, mode: str, stage: str) -> str:
    """The user text for ``mode`` in {think, nothink} and ``stage`` in {train, eval}."""
    if (mode, stage) not in TEMPLATES:
        raise ValueError(f"unknown prompt mode/stage {mode!r}/{stage!r}; expected mode in {MODES}, stage in {STAGES}")
    return TEMPLATES[(mode, stage)].format(Question=question)


def solution(label: str) -> str:
    """CLS-RL's ``solution`` column: ``"<answer> label </answer>"``."""
    return f"<answer> {label} </answer>"


__all__ = ["DATASET_PREFIXES", "DEFAULT_PREFIX", "MODES", "NOTHINK_EVAL", "NOTHINK_TRAIN", "STAGES", "TEMPLATES",
           "THINK_EVAL", "THINK_TRAIN", "build_question", "format_prompt", "question_prefix", "solution"]
