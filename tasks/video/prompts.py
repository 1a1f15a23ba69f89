"""The question template and per-type answer instructions of VideoRFT (arXiv 2505.12434) and Video-R1
(arXiv 2503.21776), reproduced character for character from their training scripts (``grpo.py``, ``sft_video.py``).

Two prompt conventions exist in the released code and both are kept:

* **Video-R1** (``tulerfeng/Video-R1``): a multiple-choice question is ``problem + "Options:\\n"`` followed by every
  option and a newline; the SFT conversation has the system turn ``"You are a helpful assistant"``.
* **VideoRFT** (``QiWang98/VideoRFT``): the question is ``problem`` as written (options are not appended); the SFT
  conversation has R1-V's system prompt (:data:`R1_SYSTEM_PROMPT`).

In both, GRPO prompts have no system turn and the user turn is ``[media, QUESTION_TEMPLATE.format(Question=q) +
TYPE_TEMPLATE[problem_type]]``; the SFT target is ``process + "\\n" + solution``.
"""

from __future__ import annotations

from typing import Any, Sequence

PROBLEM_TYPES: tuple[str, ...] = ("multiple choice", "numerical", "OCR", "free-form", "regression")
"""The ``problem_type`` values of the released files."""

DATA_TYPES: tuple[str, ...] = ("image", "video")

STYLES: tuple[str, ...] = ("video-r1", "videorft")
"""Prompt conventions: how the question is built and which system prompt SFT rows get."""

QUESTION_TEMPLATE = (
    "{Question}\n"
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. "
    "Provide your detailed reasoning between the <think> </think> tags, and then give your final answer between the "
    "<answer> </answer> tags."
)
"""The question template of both papers (note the missing full stop after "thought expressions", as released)."""

TYPE_TEMPLATE: dict[str, str] = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> "
                       "</answer> tags.",
    "numerical": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "OCR": " Please transcribe text from the image/video clearly and provide your text answer within the <answer> "
           "</answer> tags.",
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "regression": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
}
"""Answer instruction appended to the question, by ``problem_type``."""

R1_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
    "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "
    "<think> reasoning process here </think><answer> answer here </answer>"
)
"""System turn of VideoRFT's SFT conversations (R1-V's)."""

VIDEO_R1_SYSTEM_PROMPT = "You are a helpful assistant"
"""System turn of Video-R1's SFT conversations."""

SFT_SYSTEM_PROMPT: dict[str, str] = {"video-r1": VIDEO_R1_SYSTEM_PROMPT, "videorft": R1_SYSTEM_PROMPT}


def question_text(problem: str, problem_type: str, options: Sequence[str] | None, style: str) -> str:
    """The ``{Question}`` of the template: Video-R1 appends ``"Options:\\n"`` and each option line to a
    multiple-choice problem; VideoRFT uses the problem as written."""
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; expected one of {STYLES}")
    if style == "video-r1" and problem_type == "multiple choice":
        return problem + "Options:\n" + "".join(f"{option}\n" for option in options or ())
    return problem


def user_prompt(problem: str, problem_type: str, options: Sequence[str] | None = None,
                style: str = "video-r1") -> str:
    """The text part of the user turn: question template plus the answer instruction of ``problem_type``."""
    if problem_type not in TYPE_TEMPLATE:
        raise ValueError(f"unknown problem_type {problem_type!r}; expected one of {PROBLEM_TYPES}")
    return QUESTION_TEMPLATE.format(Question=question_text(problem, problem_type, options, style)) + \
        TYPE_TEMPLATE[problem_type]


def sft_target(process: str, solution: str) -> str:
    """The assistant turn of a CoT-SFT row: ``process + "\\n" + solution`` (both papers)."""
    return process + "\n" + solution


def option_letters(options: Sequence[Any]) -> list[str]:
    """The letters of options written ``"A. text"`` (the released files' convention); '' for other forms."""
    out = []
    for option in options:
        text = str(option)
        out.append(text[0] if len(text) >= 2 and text[0].isalpha() and text[1] in ".)" else "")
    return out


__all__ = ["DATA_TYPES", "PROBLEM_TYPES", "QUESTION_TEMPLATE", "R1_SYSTEM_PROMPT", "SFT_SYSTEM_PROMPT", "STYLES",
           "TYPE_TEMPLATE", "VIDEO_R1_SYSTEM_PROMPT", "option_letters", "question_text", "sft_target", "user_prompt"]
