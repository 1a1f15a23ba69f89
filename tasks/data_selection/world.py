"""The toy task of the data-selection study: three skills over single-token words, noisy annotations, a held-out
phrasing, and a probe task the base model knows (for forgetting).

* Skills (8 facts each): ``colour`` (shape → colour), ``opposite`` (left → right, yes → no, ...), ``next`` (number
  word → the next one). Four question templates per skill; three are used for training, the fourth is held out:
  the evaluation asks every fact in the held-out phrasing (the ``id`` split — same facts, unseen wording).
* Training pool: every fact × 3 training templates × 4 filler words = 288 rows. Each row has three independent
  "annotator" responses, each wrong with probability ``noise`` (a random other answer of the same skill) and in one
  of three styles ("red", "red.", "red indeed"). The row's
  target is annotator 1's; ``meta.candidates`` holds the other two (GRAPE's candidate pool); ``meta.noisy`` marks a
  wrong target (for reporting only — no selector reads it); ``meta.skills`` = [skill] (STAT).
* Base model: the probe (8×) and the ``next`` skill with clean labels — so S3FT's own-answer branch has something to
  find, and the base model's failures on a validation split (training phrasing, clean labels) give STAT a
  missing-skill profile concentrated on ``colour`` and ``opposite``.
* Probe: "Repeat the word {w}." → w; never trained after the base; its accuracy drop is the forgetting.
* Scoring (:func:`answer_word`): a generation is correct when the first known answer word it names is the truth,
  whatever the style around it.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SKILLS: dict[str, dict[str, str]] = {
    "colour": {"circle": "red", "square": "green", "triangle": "blue", "diamond": "yellow", "star": "purple",
               "cross": "orange", "hexagon": "pink", "ring": "cyan"},
    "opposite": {"left": "right", "right": "left", "up": "down", "down": "up", "yes": "no", "no": "yes",
                 "big": "small", "small": "big"},
    "next": {"zero": "one", "one": "two", "two": "three", "three": "four", "four": "five", "five": "six",
             "six": "seven", "seven": "eight"},
}
TEMPLATES: dict[str, tuple[str, ...]] = {
    "colour": ("What colour is the {x}? {f}", "{f} name the colour of the {x}.", "The {x} has which colour? {f}",
               "{f} which colour belongs to the {x}?"),
    "opposite": ("What is the opposite of {x}? {f}", "{f} give the opposite of {x}.", "The opposite of {x} is? {f}",
                 "{f} which word means the reverse of {x}?"),
    "next": ("What number comes after {x}? {f}", "{f} count one past {x}.", "After {x} comes? {f}",
             "{f} which number follows {x}?"),
}
FILLERS = ("please", "now", "quickly", "kindly")
STYLES = ("{a}", "{a}.", "{a} indeed")  # the annotators' response styles
PROBE_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "left", "right",
               "up", "down", "yes", "no")


def answer_word(text: str) -> str | None:
    """The known answer word a response names (the first one, in reading order), or None — linear time."""
    words = set(a for facts in SKILLS.values() for a in facts.values())
    for word in re.findall(r"[a-z]+", text.lower()[:10_000]):
        if word in words:
            return word
    return None


def _row(sample_id: str, question: str, answer: str, **meta: object) -> dict:
    return {"id": sample_id, "messages": [{"role": "user", "content": question},
                                          {"role": "assistant", "content": answer}], "answer": answer, "meta": meta}


def build(folder: str | Path, seed: int = 0, noise: float = 0.3) -> dict[str, Path]:
    """Write train / id / val / probe / base JSONL files; returns their paths. Deterministic given the seed."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train, ident, val, base = [], [], [], []

    def annotate(skill: str, truth: str) -> str:
        answer = truth if rng.random() >= noise else rng.choice([a for a in SKILLS[skill].values() if a != truth])
        return rng.choice(STYLES).format(a=answer)

    for skill, facts in SKILLS.items():
        for x, truth in facts.items():
            for t, template in enumerate(TEMPLATES[skill][:3]):
                for f in FILLERS:
                    question = template.format(x=x, f=f).strip().capitalize()
                    labels = [annotate(skill, truth) for _ in range(3)]
                    train.append(_row(f"tr-{skill}-{x}-{t}-{f}", question, labels[0], skills=[skill],
                                      candidates=labels[1:], noisy=answer_word(labels[0]) != truth))
                    if f == FILLERS[0]:
                        val.append(_row(f"val-{skill}-{x}-{t}", question, truth, skills=[skill]))
                    if skill == "next":
                        base.append(_row(f"base-{skill}-{x}-{t}-{f}", question, truth))
            for f in FILLERS[:2]:
                question = TEMPLATES[skill][3].format(x=x, f=f).strip().capitalize()
                ident.append(_row(f"id-{skill}-{x}-{f}", question, truth, skill=skill))
    probe = [_row(f"probe-{w}", f"Repeat the word {w}.", w) for w in PROBE_WORDS]
    base += [{**row, "id": f"{row['id']}-r{k}"} for k in range(8) for row in probe]
    paths = {}
    for name, rows in (("train", train), ("id", ident), ("val", val), ("probe", probe), ("base", base)):
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths[name] = path
    return paths


def s3ft_judge(sample: object, text: str) -> bool:
    """S3FT's judge on this task: the response names the same answer word as the (annotated) gold target."""
    target = getattr(sample, "target", None)
    gold = answer_word(target.text) if target is not None else None
    return gold is not None and answer_word(text) == gold
