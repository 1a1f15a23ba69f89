"""The toy task of the objective comparison study: shape → colour knowledge with nuisance attributes, an
in-distribution split, an out-of-distribution split (a held-out question template, and held-out size/position
combinations), and a probe task the base model knows (for forgetting).

* Target: "What colour is the {size} {shape} on the {position}?" → the shape's fixed colour (8 shapes, one colour each;
  size ∈ 4 words, position ∈ 4 words are nuisances that never change the answer). Two training templates; per shape,
  two (size, position) combinations never appear in training.
* ID evaluation: the training templates on seen combinations. OOD evaluation: a third template never seen in
  training, over every combination (the held-out ones included).
* Probe: "Repeat the word {w}." → w (two templates, 17 number / direction / yes-no words), learned by the base model before
  the study and never trained afterwards; its accuracy drop after a method is that method's forgetting.
* Base: the probe rows (8×) plus a warm start on a third of the target rows (first template only), so on-policy
  methods start with a non-zero reward rate.

Every answer is one token of the tiny tokenizer, so first-token argmax is the greedy answer (accuracy and confidence
for calibration come from one forward pass). Nuisance words never change the answer, so rows of one (shape, template)
succeed or fail together: ``meta.cluster`` names these clusters, and the study's standard errors count clusters
(16 ID, 8 OOD, 34 probe per seed), not rows. Deterministic given the seed.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

SHAPE_COLOUR = {"circle": "red", "square": "green", "triangle": "blue", "diamond": "yellow", "star": "purple",
                "cross": "orange", "hexagon": "pink", "ring": "cyan"}
SIZES = ("small", "large", "big", "tiny")
POSITIONS = ("left", "right", "up", "down")
TRAIN_TEMPLATES = ("What colour is the {size} {shape} on the {position}?",
                   "The {shape} is {size} and sits {position}. What colour is it?")
OOD_TEMPLATE = "Which colour has the {shape} that is {size}, {position} side?"
PROBE_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "left", "right",
               "up", "down", "yes", "no")
PROBE_TEMPLATES = ("Repeat the word {w}.", "Say {w} again.")


def _row(sample_id: str, question: str, answer: str, **meta: object) -> dict:
    return {"id": sample_id, "messages": [{"role": "user", "content": question},
                                          {"role": "assistant", "content": answer}], "answer": answer, "meta": meta}


def held_out(seed: int) -> dict[str, set[tuple[str, str]]]:
    """Per shape, the two (size, position) combinations training never shows."""
    rng = random.Random(seed)
    combos = list(itertools.product(SIZES, POSITIONS))
    return {shape: set(rng.sample(combos, 2)) for shape in SHAPE_COLOUR}


def build(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write train / id / ood / probe JSONL files; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hidden = held_out(seed)
    train, ident, ood = [], [], []
    for shape, colour in SHAPE_COLOUR.items():
        for size, position in itertools.product(SIZES, POSITIONS):
            seen = (size, position) not in hidden[shape]
            slots = {"shape": shape, "size": size, "position": position}
            if seen:
                for t, template in enumerate(TRAIN_TEMPLATES):
                    train.append(_row(f"tr-{shape}-{size}-{position}-{t}", template.format(**slots), colour,
                                      split="train"))
                t = len(ident) % 2
                ident.append(_row(f"id-{shape}-{size}-{position}", TRAIN_TEMPLATES[t].format(**slots), colour,
                                  split="id", cluster=f"{shape}-{t}"))
            ood.append(_row(f"ood-{shape}-{size}-{position}", OOD_TEMPLATE.format(**slots), colour, split="ood",
                            held_out_combo=not seen, cluster=shape))
    probe = [_row(f"probe-{w}-{t}", template.format(w=w), w, split="probe", cluster=f"{w}-{t}")
             for w in PROBE_WORDS for t, template in enumerate(PROBE_TEMPLATES)]
    paths = {}
    # the base model: the probe (8×) and a warm start on a third of the target rows, first template only
    repeated = [{**row, "id": f"{row['id']}-r{k}"} for k in range(8) for row in probe]
    warm = [row for k, row in enumerate(r for r in train if r["id"].endswith("-0")) if k % 3 == 0]
    for name, rows in (("train", train), ("id", ident), ("ood", ood), ("probe", probe), ("base", warm + repeated)):
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths[name] = path
    return paths
