"""GRAPE — "The Best Instruction-Tuning Data are Those That Fit" (Zhang, Dai, Peng; arXiv 2502.04194).

For an instruction with several candidate responses, keep the one(s) the *target model* (the model about to be
trained, before any update) finds most likely: s_j = mean over response tokens of log π_θ0(y_t | x, y_<t) — the
length-normalised score (an unnormalised sum would favour the shortest response); prompt tokens are excluded.
The prompt is encoded with the model's own chat template (the paper uses a plain "Question/Answer" template).

Candidates come from either ``meta.candidates`` (a list of response strings; the sample's own target competes too
unless ``include_gold: false``) — the kept response becomes the target — or from rows that share ``meta.group``
(the same instruction with different responses), of which the top ``k`` rows are kept. Rows with neither are kept
unchanged (``kept_no_candidates``); candidates over ``data.max_length`` are not scored (``overlong_candidates``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

from mmsft.config_base import _f
from mmsft.data.schema import DataError, Message, Part, Sample
from mmsft.data.selectors.base import Decision, SelectionEnv, register_selector
from mmsft.data.selectors.scoring import token_stats


@dataclass
class GrapeArgs:
    k: int = _f(1, "Rows kept per meta.group (meta.candidates always yields one target).", ge=1)
    include_gold: bool = _f(True, "With meta.candidates, the sample's own target is a candidate too.")


def with_target(sample: Sample, text: str) -> Sample:
    target = Message("assistant", (Part("text", text=text),))
    return dataclasses.replace(sample, messages=[*sample.prompt_messages, target], token_weights=None)


def mean_logps(samples: Sequence[Sample], env: SelectionEnv) -> list[float | None]:
    """Mean target log-prob of each sample under the env's model (None: over max_length)."""
    from mmsft.models.adapters import OverlongSample

    encoded, where = [], []
    for i, s in enumerate(samples):
        try:
            encoded.append(env.adapter.encode(s, with_target=True))
            where.append(i)
        except OverlongSample:
            continue
    stats = token_stats(env.model, env.adapter, encoded, env.device, env.batch_size, vocab_subset=env.vocab_subset)
    out: list[float | None] = [None] * len(samples)
    for i, st in zip(where, stats):
        out[i] = float(st.logp.double().mean()) if len(st.logp) else None
    return out


@register_selector("grape", kind="offline", args=GrapeArgs)
def grape(samples: Sequence[Sample], args: GrapeArgs, env: SelectionEnv) -> list[Decision]:
    """Keep the response the target model finds most likely (ties: the earlier candidate)."""
    decisions: list[Decision | None] = [None] * len(samples)
    queries: list[Sample] = []
    owners: list[tuple[int, str]] = []
    for i, s in enumerate(samples):
        cands = s.meta.get("candidates")
        if cands is None:
            continue
        if not isinstance(cands, list) or not all(isinstance(c, str) and c for c in cands):
            raise DataError(f"{s.where()}: meta.candidates must be a list of non-empty strings, got {cands!r}")
        texts = ([s.target.text] if args.include_gold and s.target is not None else []) + cands
        for text in texts:
            queries.append(with_target(s, text))
            owners.append((i, text))
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        if s.meta.get("candidates") is None and s.meta.get("group") is not None:
            groups.setdefault(str(s.meta["group"]), []).append(i)
    grouped = [i for members in groups.values() for i in members]
    scores = mean_logps(queries + [samples[i] for i in grouped], env)
    by_owner: dict[int, list[tuple[float, int, str]]] = {}
    overlong = 0
    for j, ((i, text), score) in enumerate(zip(owners, scores)):
        if score is None:
            overlong += 1
            continue
        by_owner.setdefault(i, []).append((score, j, text))
    for i, cands in by_owner.items():
        score, _, text = max(cands, key=lambda c: (c[0], -c[1]))
        decisions[i] = Decision(i, True, "kept_most_likely_candidate", target=text,
                                scores={"grape_score": score, "candidates": float(len(cands))})
    group_scores = dict(zip(grouped, scores[len(queries):]))
    for members in groups.values():
        ranked = sorted((m for m in members if group_scores[m] is not None), key=lambda m: (-group_scores[m], m))
        top = set(ranked[:args.k])
        for m in members:
            score = group_scores[m]
            decisions[m] = Decision(m, m in top, "kept_group_top" if m in top else
                                    ("dropped_overlong" if score is None else "dropped_group_lower"),
                                    scores={} if score is None else {"grape_score": score})
    for i in range(len(samples)):
        if decisions[i] is None:
            reason = "dropped_all_candidates_overlong" if samples[i].meta.get("candidates") is not None else \
                "kept_no_candidates"
            decisions[i] = Decision(i, reason.startswith("kept"), reason)
    out = [d for d in decisions if d is not None]
    if overlong:
        out[0].scores["overlong_candidates"] = float(overlong)
    return out
