"""Selecting RL training instances by the current model's own rollouts — RIF-RFT's rollout-based instance filter
(Lai et al., "Reinforcement Fine-Tuning Naturally Mitigates Forgetting in Continual Post-Training",
arXiv 2507.05386).

Before an RL stage, the model about to be trained samples ``k`` completions for every instance of the stage's prompt
dataset (the RL producer's dataset: ``data.train_path`` under the stage's media and length policies), scored with
the stage's rewards (``rl.rewards``, ``rl.reward_weights``). A rollout succeeds when its total reward is at least
``success_threshold``. An instance is kept when ``min_successes ≤ successes ≤ max_successes``: ``min_successes=1``
drops the "incompetent" instances that no rollout solves (they give GRPO no gradient); ``max_successes=k−1`` also
drops the fully solved ones (offline, this is DAPO's zero-variance filter). Prompts longer than ``data.max_length``
under the ``drop`` policy are skipped and counted as ``overlong``, as the RL producer does.

The rollouts are cached in ``<out>/rollouts.jsonl`` (one row per instance: rewards and texts) under a key of the
model files, the dataset file, the rule, the sampling settings, the rewards and the seed. Instances are sampled in
fixed chunks with a seed per chunk, so a run killed while filtering reuses the finished chunks and produces the same
table as an uninterrupted one; a finished selection (``selection.json`` + ``selected.jsonl``) is reused without
loading the model. ``selected.jsonl`` holds the kept rows verbatim except for media paths, made absolute (the
caller adds the source folder to ``data.media_roots``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from mmsft.data.schema import DataError

CACHE_FILE, SELECTED_FILE, SUMMARY_FILE = "rollouts.jsonl", "selected.jsonl", "selection.json"


@dataclass(frozen=True)
class RolloutFilter:
    """The RIF-RFT rule and its sampling settings (``temperature < 0`` / ``max_new_tokens == 0``: the stage's rl.*)."""

    k: int = 8
    min_successes: int = 1
    max_successes: int = 8
    success_threshold: float = 1.0
    temperature: float = -1.0
    max_new_tokens: int = 0
    batch_size: int = 64
    chunk: int = 16  # instances per sampling round (the cache's unit of work)

    def __post_init__(self) -> None:
        if self.k < 1 or self.chunk < 1 or self.batch_size < 1:
            raise ValueError(f"RolloutFilter needs k, chunk and batch_size >= 1, got {self}")
        if not 0 <= self.min_successes <= self.max_successes <= self.k:
            raise ValueError(f"RolloutFilter needs 0 <= min_successes <= max_successes <= k, got "
                             f"min={self.min_successes} max={self.max_successes} k={self.k}")

    def successes(self, rewards: Iterable[float]) -> int:
        return sum(1 for r in rewards if r >= self.success_threshold)

    def keep(self, rewards: Iterable[float]) -> bool:
        return self.min_successes <= self.successes(rewards) <= self.max_successes


def filter_table(table: dict[str, list[float] | None], rule: RolloutFilter) -> tuple[list[str], dict[str, Any]]:
    """Kept instance ids (table order) and the counts: ``instances``, ``kept``, ``incompetent`` (fewer than
    ``min_successes``), ``mastered`` (more than ``max_successes``), ``overlong`` (``None`` rows: not sampled),
    ``rollouts`` and ``histogram`` (instances per number of successes)."""
    kept: list[str] = []
    counts: dict[str, Any] = {"instances": len(table), "kept": 0, "incompetent": 0, "mastered": 0, "overlong": 0,
                              "rollouts": 0, "histogram": {}}
    for sample_id, rewards in table.items():
        if rewards is None:
            counts["overlong"] += 1
            continue
        counts["rollouts"] += len(rewards)
        wins = rule.successes(rewards)
        counts["histogram"][str(wins)] = counts["histogram"].get(str(wins), 0) + 1
        if wins < rule.min_successes:
            counts["incompetent"] += 1
        elif wins > rule.max_successes:
            counts["mastered"] += 1
        else:
            kept.append(sample_id)
    counts["kept"] = len(kept)
    counts["histogram"] = dict(sorted(counts["histogram"].items(), key=lambda kv: int(kv[0])))
    return kept, counts


def absolute_media(row: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """``row`` with every relative image/video path of its messages resolved against ``base_dir`` (in place)."""
    for message in row.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict):
                continue
            for kind in ("image", "video"):
                ref = part.get(kind)
                if isinstance(ref, str) and ref and "://" not in ref and not ref.startswith("file:") \
                        and not Path(ref).is_absolute():
                    part[kind] = str((base_dir / ref).resolve())
    return row


def read_rows(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(sample id, raw row)`` of a JSONL file, ids as :func:`mmsft.data.loaders.load_jsonl` assigns them."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data selection reads JSONL files; {path} is not one")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.removeprefix("\ufeff"))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{line_no}: each row must be a JSON object")
            rows.append((str(row.get("id", len(rows))), row))
    return rows


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write JSONL atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def _model_stamp(model_dir: Path) -> list[list[Any]]:
    files = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin"))
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


@dataclass
class SelectionResult:
    path: Path  # the selected rows (JSONL)
    kept: list[str]
    counts: dict[str, Any]
    cpu_s: float  # CPU time of the call that finished the selection (a filter resumed after a kill: its own part)
    wall_s: float
    reused: bool = False  # the whole selection came from a previous run
    rollouts_sampled: int = 0  # rollouts generated by this call (0 when everything came from the cache)
    key: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {**self.counts, "cpu_s": self.cpu_s, "wall_s": self.wall_s, "reused": self.reused,
                "rollouts_sampled": self.rollouts_sampled, "path": str(self.path)}


class RolloutCache:
    """``rollouts.jsonl``: a header line with the key, then one row per instance (``rewards`` or ``overlong``)."""

    def __init__(self, path: Path, key: dict[str, Any]) -> None:
        self.path, self.key = path, key
        self.rows: dict[str, dict[str, Any]] = {}
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            header = _json_or_none(lines[0]) if lines else None
            if isinstance(header, dict) and header.get("key") == _normal(key):
                for line in lines[1:]:
                    row = _json_or_none(line)  # a line cut by a kill is dropped and resampled
                    if isinstance(row, dict) and "id" in row:
                        self.rows[str(row["id"])] = row
        write_rows(path, [{"key": _normal(key)}, *self.rows.values()])  # drops a torn last line

    def add(self, rows: list[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.rows[str(row["id"])] = row
            handle.flush()
            os.fsync(handle.fileno())


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def select_learnable(cfg: Any, model_dir: str | Path, out_dir: str | Path, rule: RolloutFilter) -> SelectionResult:
    """Run the filter for one RL stage: ``cfg`` is the stage's RunConfig (its dataset, rewards, sampling, seed),
    ``model_dir`` the model the stage starts from; writes ``out_dir``/{rollouts.jsonl, selected.jsonl,
    selection.json} and returns the kept ids and counts (see the module doc)."""
    from mmsft.config import reward_names

    out, model_dir, data = Path(out_dir), Path(model_dir), Path(cfg.data.train_path)
    rl = cfg.rl
    rewards = reward_names(cfg)
    if not rewards:
        raise ValueError("RIF-RFT filtering needs rl.rewards (the verifiable reward that defines a success)")
    sampling = {"temperature": rl.temperature if rule.temperature < 0 else rule.temperature,
                "max_new_tokens": rule.max_new_tokens or rl.max_new_tokens, "top_p": rl.top_p, "top_k": rl.top_k,
                "stop_strings": rl.stop_strings}
    key = {"model": str(model_dir), "model_files": _model_stamp(model_dir), "data": str(data),
           "data_stamp": [data.stat().st_size, data.stat().st_mtime_ns] if data.is_file() else None,
           "rule": asdict(rule), "sampling": sampling, "rewards": rewards, "reward_weights": rl.reward_weights,
           "seed": cfg.train.seed, "max_length": cfg.data.max_length, "overlong": cfg.data.overlong}
    summary_path, selected_path = out / SUMMARY_FILE, out / SELECTED_FILE
    if summary_path.is_file() and selected_path.is_file():
        saved = _json_or_none(summary_path.read_text(encoding="utf-8"))
        if isinstance(saved, dict) and saved.get("key") == _normal(key):
            return SelectionResult(selected_path, saved["kept"], saved["counts"], saved["cpu_s"], saved["wall_s"],
                                   reused=True, key=key)
    out.mkdir(parents=True, exist_ok=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    cache = RolloutCache(out / CACHE_FILE, key)
    raw = read_rows(data)
    sampled = _sample_missing(cfg, model_dir, [sid for sid, _ in raw], cache, rule, rewards, sampling)
    table = {sid: (None if cache.rows[sid].get("overlong") else list(cache.rows[sid]["rewards"])) for sid, _ in raw}
    kept, counts = filter_table(table, rule)
    keep = set(kept)
    write_rows(selected_path, (absolute_media(row, data.parent.resolve()) for sid, row in raw if sid in keep))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    summary_path.write_text(json.dumps({"key": _normal(key), "kept": kept, "counts": counts, "cpu_s": cpu,
                                        "wall_s": wall, "rollouts_sampled": sampled}, indent=2) + "\n")
    return SelectionResult(selected_path, kept, counts, cpu, wall, False, sampled, key)


def _sample_missing(cfg: Any, model_dir: Path, ids: list[str], cache: RolloutCache, rule: RolloutFilter,
                    rewards: list[str], sampling: dict[str, Any]) -> int:
    """Sample every chunk of ``ids`` that has an instance missing from the cache; returns the rollouts sampled."""
    chunks = [ids[i:i + rule.chunk] for i in range(0, len(ids), rule.chunk)]
    todo = [c for c, chunk in enumerate(chunks) if any(sid not in cache.rows for sid in chunk)]
    if not todo:
        return 0
    from mmsft.data.loaders import load_dataset
    from mmsft.data.schema import MediaPolicy
    from mmsft.eval.evaluators import ModelSettings
    from mmsft.models.adapters import OverlongSample
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.rewards import compute_rewards
    from mmsft.rollout import HFGenerateEngine, SamplingParams
    from mmsft.train.trainer import media_budget

    samples = {s.id: s for s in load_dataset(cfg.data.train_path, media=MediaPolicy.from_config(
        cfg.data.media_roots, cfg.data.allow_any_media_path))}
    settings = ModelSettings.from_config(cfg, media_budget(cfg))
    loaded = load_model(str(model_dir), family=settings.family, dtype=settings.dtype,
                        attn_implementation=settings.attn_implementation or None,
                        trust_remote_code=settings.trust_remote_code)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = loaded.model.to(device).eval()
    adapter = build_adapter(loaded, settings.budget, max_length=cfg.data.max_length, overlong=cfg.data.overlong)
    vocab_subset, allow_stop = adapter.sampling_constraints()
    engine = HFGenerateEngine(lambda: model, adapter, batch_size=rule.batch_size)
    weights = [float(w) for w in cfg.rl.reward_weights.split(",") if w.strip()] or None
    sampled = 0
    for c in todo:
        rows, prompts, members = [], [], []
        for sid in chunks[c]:
            try:
                prompts.append(adapter.encode(samples[sid], with_target=False))
                members.append(sid)
            except OverlongSample:
                rows.append({"id": sid, "overlong": True})
        if prompts:
            params = SamplingParams(n=rule.k, max_new_tokens=sampling["max_new_tokens"],
                                    temperature=sampling["temperature"], top_p=sampling["top_p"],
                                    top_k=sampling["top_k"],
                                    stop_strings=tuple(s for s in sampling["stop_strings"].split(",") if s),
                                    seed=cfg.train.seed * 1_000_003 + 7919 * c + 1, vocab_subset=vocab_subset,
                                    allow_stop=allow_stop)
            rollouts = engine.generate(prompts, params)
            texts = [r.text for r in rollouts]
            batch = [samples[members[r.prompt_index]] for r in rollouts]
            totals = compute_rewards(rewards, weights, batch, texts).total
            sampled += len(rollouts)
            for m, sid in enumerate(members):
                part = slice(m * rule.k, (m + 1) * rule.k)
                rows.append({"id": sid, "rewards": [float(v) for v in totals[part]], "texts": texts[part]})
        cache.add([r for r in rows if r["id"] not in cache.rows])
    return sampled


__all__ = ["RolloutCache", "RolloutFilter", "SelectionResult", "absolute_media", "filter_table", "read_rows",
           "select_learnable", "write_rows"]
