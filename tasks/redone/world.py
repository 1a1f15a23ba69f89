"""The toy data of the RedOne 2.0 recipe (arXiv 2511.07070), written locally from the facts of the data-selection
world (:mod:`tasks.data_selection.world`): single-token answers a reward can verify.

* ``rl.jsonl`` — the broad task mix for exploratory and refinement RL: every fact × the three training phrasings.
* ``sft_pool.jsonl`` — the targeted-SFT pool: the same task rows with their gold answers, plus general rows
  ("Repeat the word w." → w) marked ``meta.general: true`` (mixed in by ``redone_targeted``, never sampled).
* ``test.jsonl`` — every fact in the held-out phrasing; ``probe.jsonl`` — the general rows (a forgetting probe).

``python -m tasks.redone.world data/redone`` writes them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tasks.data_selection.world import PROBE_WORDS, SKILLS, TEMPLATES


def _row(sample_id: str, question: str, answer: str, **meta: object) -> dict:
    return {"id": sample_id, "messages": [{"role": "user", "content": question},
                                          {"role": "assistant", "content": answer}], "answer": answer, "meta": meta}


def build(folder: str | Path) -> dict[str, Path]:
    """Write rl / sft_pool / test / probe JSONL files into ``folder``; returns their paths (deterministic)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    task, test = [], []
    for skill, facts in SKILLS.items():
        for x, truth in facts.items():
            for t, template in enumerate(TEMPLATES[skill][:3]):
                task.append(_row(f"{skill}-{x}-{t}", template.format(x=x, f="").strip().capitalize(), truth,
                                 skill=skill))
            test.append(_row(f"test-{skill}-{x}", TEMPLATES[skill][3].format(x=x, f="").strip().capitalize(), truth,
                             skill=skill))
    probe = [_row(f"general-{w}", f"Repeat the word {w}.", w, general=True) for w in PROBE_WORDS]
    paths = {}
    for name, rows in (("rl", task), ("sft_pool", task + probe), ("test", test), ("probe", probe)):
        paths[name] = folder / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


if __name__ == "__main__":  # pragma: no cover - a command-line convenience
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tasks.redone.world OUT_FOLDER")
    for name, path in build(sys.argv[1]).items():
        print(f"{name}: {path}")
