"""S-SFT and R-SFT dataset builder for VGRP-Bench puzzles (Ren et al., arXiv 2503.23064).

Writes ``out_dir/data.jsonl`` in the trainer's row schema plus ``out_dir/images/NNNNNN.png`` (paths relative to the
JSONL file). Each row's ``answer`` is the full instance (``Instance.to_dict()`` plus ``with_image``), which is
all :func:`tasks.vgrp.evaluate.evaluate_predictions` needs to verify a prediction.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image

from envs.vgrp.core import LEVELS
from envs.vgrp.probes import cell_at_probe, valid_move_probe
from envs.vgrp.registry import get_puzzle
from envs.vgrp.render import render_image
from tasks.vgrp.prompts import FORMATS, GRID_STYLES, build_prompt, build_target
from tasks.vgrp.reasoning import reasoning_target


def content_hash(board: list[list[str]], clues: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps([board, clues], sort_keys=True).encode()).hexdigest()[:16]


def build_dataset(puzzle: str, out_dir: str | Path, num: int, seed: int, size: int | None = None,
                  difficulty: str | None = None, fmt: str = "solution", with_image: bool = True,
                  image_px: int = 800, n_clues: int | None = None, grid_style: str = "lists") -> dict[str, Any]:
    """Generate ``num`` distinct instances and write them as SFT rows; returns counts. ``grid_style``: ``lists``
    (VGRP's 2-D lists) or ``rows`` (one string per row; :mod:`tasks.vgrp.prompts`)."""
    p = get_puzzle(puzzle)
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: expected one of {FORMATS}")
    if grid_style not in GRID_STYLES:
        raise ValueError(f"grid_style={grid_style!r}: expected one of {GRID_STYLES}")
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"num={num!r}: expected an int >= 1")
    if difficulty is not None and difficulty not in LEVELS:
        raise ValueError(f"difficulty={difficulty!r}: expected one of {LEVELS}")
    n = p.size_for(size, difficulty)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if with_image:
        (out / "images").mkdir(exist_ok=True)
    rng = random.Random(f"vgrp-build/{p.name}/{n}/{seed}")
    seen: set[str] = set()
    counts = {"rows": 0, "images": 0, "duplicates_skipped": 0, "think_truncated": 0, "solver_failed": 0}
    attempts = 0
    with (out / "data.jsonl").open("w", encoding="utf-8") as fh:
        while counts["rows"] < num:
            attempts += 1
            if attempts > 20 * num + 100:
                raise RuntimeError(f"{p.name} {n}x{n}: only {counts['rows']} distinct instances after {attempts} tries")
            level_seed = rng.getrandbits(31)
            inst = p.generate(n, level_seed, n_clues, difficulty)
            key = content_hash(inst.board, inst.clues)
            if key in seen:
                counts["duplicates_skipped"] += 1
                continue
            seen.add(key)
            if fmt == "reasoning":
                think, answer, flags = reasoning_target(p, inst)
                counts["think_truncated"] += flags["think_truncated"]
                counts["solver_failed"] += not flags["solver_solved"]
            else:
                think, answer = None, inst.solution
            i = counts["rows"] + 1
            target = build_target(inst, answer, think, grid_style)
            user: list[dict[str, Any]] = []
            if with_image:
                rel = f"images/{i:06d}.png"
                Image.fromarray(render_image(p, inst, px=image_px)).save(out / rel, compress_level=3)
                user.append({"type": "image", "image": rel})
                counts["images"] += 1
            user.append({"type": "text", "text": build_prompt(p, inst, fmt, with_image, grid_style)})
            row = {
                "id": f"vgrp-{p.name}-{n}-{seed}-{i:06d}",
                "messages": [{"role": "user", "content": user},
                             {"role": "assistant", "content": [{"type": "text", "text": target}]}],
                "answer": {**inst.to_dict(), "with_image": with_image},
                "meta": {"puzzle": p.name, "size": n, "difficulty": inst.difficulty, "level_seed": level_seed,
                         "n_givens": sum(x != "*" for r in inst.board for x in r), "fmt": fmt,
                         "grid_style": grid_style, "with_image": with_image, "hash": key},
            }
            fh.write(json.dumps(row) + "\n")
            counts["rows"] += 1
    return {"path": str(out / "data.jsonl"), "puzzle": p.name, "size": n, "fmt": fmt, **counts}


PROBES = {"cell_at": cell_at_probe, "valid_move": valid_move_probe}


def build_probe_dataset(puzzle: str, out_dir: str | Path, num: int, seed: int, probe: str = "cell_at",
                        size: int | None = None, difficulty: str | None = None, image_px: int = 800) -> dict[str, Any]:
    """VGRP's diagnostic probes as rows: ``cell_at`` (perception of one cell) or ``valid_move`` (would one placement
    break a rule). Images show the initial board; the target is the bare answer (a symbol, or yes/no)."""
    p = get_puzzle(puzzle)
    if probe not in PROBES:
        raise ValueError(f"probe={probe!r}: expected one of {sorted(PROBES)}")
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"num={num!r}: expected an int >= 1")
    n = p.size_for(size, difficulty)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"vgrp-probe/{p.name}/{probe}/{n}/{seed}")
    with (out / "data.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(1, num + 1):
            level_seed = rng.getrandbits(31)
            inst = p.generate(n, level_seed, None, difficulty)
            q = PROBES[probe](p, inst, rng)
            rel = f"images/{i:06d}.png"
            Image.fromarray(render_image(p, inst, px=image_px)).save(out / rel, compress_level=3)
            prompt = f"You are a {p.title} player. Rules: {p.rules}\n{q['question']} Reply with the answer only."
            row = {
                "id": f"vgrp-{probe}-{p.name}-{n}-{seed}-{i:06d}",
                "messages": [{"role": "user", "content": [{"type": "image", "image": rel},
                                                          {"type": "text", "text": prompt}]},
                             {"role": "assistant", "content": [{"type": "text", "text": q["answer"]}]}],
                "answer": {**q, "puzzle": p.name, "size": n},
                "meta": {"puzzle": p.name, "size": n, "probe": probe, "level_seed": level_seed},
            }
            fh.write(json.dumps(row) + "\n")
    return {"path": str(out / "data.jsonl"), "puzzle": p.name, "size": n, "probe": probe, "rows": num, "images": num}
