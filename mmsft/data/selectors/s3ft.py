"""S3FT — Selective Self-to-Supervised Fine-Tuning (Gupta et al., arXiv 2502.08130).

A data transform run once with the model about to be trained (θ0), before any update; the loss stays plain CE.
For each (x, y_gold): (1) ŷ = greedy M_θ0(x); if judge(ŷ, gold) → train on ŷ (``own``); else (2) ỹ = greedy
M_θ0(paraphrase prompt with x and y_gold); if judge(ỹ, gold) → train on ỹ (``paraphrase``); else (3) train on
y_gold (``gold``). Every sample is kept; the branch taken is the decision's reason.

Judges (``judge``): ``answer_exact`` (normalised generation == normalised reference), ``answer_contains``
(reference inside the generation), or ``package.module:function`` ``fn(sample, text) -> bool``. The reference is the
sample's ``answer`` when it has one, else its gold target text. Generated targets are trained under the same chat
template they were generated with (the adapter's).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from mmsft.config_base import _f
from mmsft.data.schema import Message, Part, Sample
from mmsft.data.selectors.base import Decision, SelectionEnv, register_selector
from mmsft.registry import Registry

JUDGES: Registry = Registry("S3FT judge")
PARAPHRASE = ("Rewrite the reference answer to the question below in your own words. Keep its final answer.\n\n"
              "Question: {prompt}\nReference answer: {gold}")


def reference_of(sample: Sample) -> str:
    if sample.answer is not None:
        return str(sample.answer)
    return sample.target.text if sample.target is not None else ""


@JUDGES.register("answer_exact")
def answer_exact(sample: Sample, text: str) -> bool:
    from mmsft.eval.generation import normalize_answer

    ref = normalize_answer(reference_of(sample))
    return bool(ref) and normalize_answer(text) == ref


@JUDGES.register("answer_contains")
def answer_contains(sample: Sample, text: str) -> bool:
    from mmsft.eval.generation import normalize_answer

    ref = normalize_answer(reference_of(sample))
    return bool(ref) and ref in normalize_answer(text)


@dataclass
class S3FTArgs:
    judge: str = _f("answer_exact", "answer_exact, answer_contains or package.module:function(sample, text) -> bool.")
    paraphrase_prompt: str = _f(PARAPHRASE, "Prompt of the paraphrase step ({prompt}: the question, {gold}: the gold "
                                            "target).")
    max_new_tokens: int = _f(64, "Generation cap of both steps.", ge=1)
    paraphrase: bool = _f(True, "Run step 2 (the paraphrase); off: own answer or gold.")


def with_user_text(sample: Sample, text: str | None, target: str | None) -> Sample:
    """A copy whose last user message's text is ``text`` (None: unchanged; media parts kept) and whose target is
    ``target`` (None: no target)."""
    messages = list(sample.prompt_messages)
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if text is not None and users:
        last = messages[users[-1]]
        media = [p for p in last.parts if p.type != "text"]
        messages[users[-1]] = Message(last.role, (*media, Part("text", text=text)))
    if target is not None:
        messages.append(Message("assistant", (Part("text", text=target),)))
    return dataclasses.replace(sample, messages=messages, token_weights=None)


def select_target(sample: Sample, own: str, paraphrase: str | None, judge: Callable[[Sample, str], bool]
                  ) -> tuple[str, str]:
    """(branch, target text) of S3FT's rule for one sample, given its generations."""
    if judge(sample, own):
        return "own", own
    if paraphrase is not None and judge(sample, paraphrase):
        return "paraphrase", paraphrase
    return "gold", sample.target.text if sample.target is not None else ""


def _generate(env: SelectionEnv, samples: list[Sample], max_new_tokens: int) -> list[str]:
    from mmsft.eval.generation import generate

    was_training = env.model.training
    try:
        return generate(env.model, env.adapter, samples, batch_size=env.batch_size, max_new_tokens=max_new_tokens)
    finally:
        env.model.train(was_training)


@register_selector("s3ft", kind="offline", args=S3FTArgs)
def s3ft(samples: Sequence[Sample], args: S3FTArgs, env: SelectionEnv) -> list[Decision]:
    """Replace each target by the model's own judged-correct answer, else its judged-correct paraphrase, else gold."""
    judge: Any = JUDGES.get(args.judge).fn
    prompts = [with_user_text(s, None, None) for s in samples]
    own = _generate(env, prompts, args.max_new_tokens)
    para: list[str | None] = [None] * len(samples)
    if args.paraphrase:
        need = [i for i, s in enumerate(samples) if not judge(s, own[i])]
        queries = [with_user_text(samples[i], args.paraphrase_prompt.replace("{prompt}", _user_text(samples[i]))
                                  .replace("{gold}", samples[i].target.text if samples[i].target else ""), None)
                   for i in need]
        for i, text in zip(need, _generate(env, queries, args.max_new_tokens)):
            para[i] = text
    out = []
    for i, s in enumerate(samples):
        branch, target = select_target(s, own[i], para[i], judge)
        out.append(Decision(i, True, f"kept_{branch}", target=None if branch == "gold" else target))
    return out


def _user_text(sample: Sample) -> str:
    users = [m for m in sample.prompt_messages if m.role == "user"]
    return users[-1].text if users else ""
