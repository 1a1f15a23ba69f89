"""STAT — Skill-Targeted Adaptive Training (He, Panigrahi, Lin, Arora; arXiv 2510.10023).

A Missing-Skill-Profile (how often each skill was named as missing in the student's failed answers) turns into
training emphasis: every sample lists its skills in ``meta.skills``.

* ``resample`` (STAT-Sel): draw ``size`` samples (0: as many as the dataset has) by picking a skill with probability
  ∝ its missing frequency, then a uniformly random sample labelled with it; a sample drawn c times is trained c times.
* ``weight``: loss weight w_i ∝ Σ_{s ∈ skills_i} p(s), rescaled to mean 1 over the kept samples.

Samples with none of the profile's skills are dropped (``dropped_no_missing_skill``); profile skills that no sample
carries are ignored and counted. The profile is ``profile`` (a mapping skill → count) or ``profile_path``: a JSON
mapping, or a JSONL of failure diagnoses with a ``missing_skills`` list per line (:func:`skill_profile`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from mmsft.config_base import _f
from mmsft.data.schema import DataError, Sample
from mmsft.data.selectors.base import Decision, SelectionEnv, register_selector


def skill_profile(diagnoses: Iterable[Sequence[str]]) -> dict[str, float]:
    """Missing-skill frequencies (sum to 1) from failure diagnoses (each a list of missing skills)."""
    counts: dict[str, float] = {}
    for skills in diagnoses:
        for skill in skills:
            counts[str(skill)] = counts.get(str(skill), 0.0) + 1.0
    total = sum(counts.values())
    return {k: v / total for k, v in sorted(counts.items())} if total else {}


def load_profile(path: str) -> dict[str, float]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"STAT profile_path {path}: no such file")
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            skills = row.get("missing_skills") if isinstance(row, dict) else None
            if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
                raise DataError(f"{path}:{n}: expected an object with a 'missing_skills' list of strings")
            rows.append(skills)
        return skill_profile(rows)
    data = json.loads(text)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object skill -> count")
    return data


@dataclass
class STATArgs:
    profile: dict = field(default_factory=dict, metadata={"help": "Missing-skill counts {skill: count}.",
                                                          "choices": None})
    profile_path: str = _f("", "JSON {skill: count} or JSONL of diagnoses with 'missing_skills' lists.")
    mode: str = _f("resample", "resample (STAT-Sel) or weight.", ("resample", "weight"))
    size: int = _f(0, "Draws of resample mode (0: the dataset size).", ge=0)


def _profile(args: STATArgs) -> dict[str, float]:
    raw = dict(args.profile) if args.profile else (load_profile(args.profile_path) if args.profile_path else {})
    if not raw:
        raise DataError("STAT needs a missing-skill profile: selector_args.profile or selector_args.profile_path")
    for skill, count in raw.items():
        if isinstance(count, bool) or not isinstance(count, (int, float)) or not np.isfinite(count) or count < 0:
            raise DataError(f"STAT profile: skill {skill!r} has count {count!r}; expected a finite number >= 0")
    return {str(k): float(v) for k, v in raw.items()}


@register_selector("stat", kind="offline", args=STATArgs)
def stat(samples: Sequence[Sample], args: STATArgs, env: SelectionEnv) -> list[Decision]:
    """Skill-targeted resampling / weighting from a missing-skill profile."""
    profile = _profile(args)
    skills_of = []
    for s in samples:
        skills = s.meta.get("skills", [])
        if not isinstance(skills, list) or not all(isinstance(k, str) for k in skills):
            raise DataError(f"{s.where()}: meta.skills must be a list of strings, got {skills!r}")
        skills_of.append(skills)
    holders = {k: [i for i, sk in enumerate(skills_of) if k in sk] for k in profile}
    usable = {k: v for k, v in profile.items() if holders[k] and v > 0}
    if not usable:
        raise DataError(f"STAT: no training sample carries any profile skill ({sorted(profile)})")
    total = sum(usable.values())
    p = {k: v / total for k, v in usable.items()}
    unused = float(sum(1 for k in profile if not holders[k]))
    if args.mode == "resample":
        rng = np.random.default_rng([env.seed, 15])
        names = sorted(p)
        copies = [0] * len(samples)
        for skill in rng.choice(names, size=args.size or len(samples), p=[p[k] for k in names]):
            members = holders[str(skill)]
            copies[members[int(rng.integers(len(members)))]] += 1
        out = []
        for i, c in enumerate(copies):
            relevant = any(k in p for k in skills_of[i])
            reason = "kept_skill_targeted" if c else ("dropped_not_drawn" if relevant else "dropped_no_missing_skill")
            out.append(Decision(i, c > 0, reason, copies=max(c, 1), scores={"copies": float(c)}))
    else:
        raw = [sum(p.get(k, 0.0) for k in sk) for sk in skills_of]
        kept = [w for w in raw if w > 0]
        mean = sum(kept) / len(kept)
        out = [Decision(i, w > 0, "kept_weighted" if w > 0 else "dropped_no_missing_skill",
                        weight=w / mean if w > 0 else None, scores={"skill_mass": w}) for i, w in enumerate(raw)]
    if unused:
        out[0].scores["profile_skills_without_samples"] = unused
    return out
