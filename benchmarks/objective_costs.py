"""Per-step cost of every objective-zoo entry, relative to plain SFT (supervised entries) or GRPO (on-policy entries)
on the same model, data and batch.

Run: ``OMP_NUM_THREADS=1 python benchmarks/objective_costs.py [--steps 8] [--warmup 2] [--only asft,gkd]``; writes
``benchmarks/results/objective_costs.{md,json}``; ``--rewards`` times the zoo rewards alone on 32 completions
(``objective_rewards.md``: a reward's cost is its call, not the GRPO step it rides on); ``--decoding`` times Transfer Q*
against greedy decoding per generated token (``objective_decoding.md``). No asserts: a measurement. A partial run
(``--only``) also runs the baselines (sft / grpo) and stores each new row's ratio against the baseline of the same run
(the host is shared, so absolute times drift between runs); the stored baseline rows are kept unless named.

Setup (built locally, nothing downloaded): ``build_tiny("text", hidden 256, intermediate 768, 4 layers)``, 64 rows of
a word-list task with 8–40-token answers, 8 sequences per optimizer step in one micro-batch, AdamW, fp32 on CPU, one
torch thread. On-policy entries: 2 prompts × group 4, 16 new tokens. A step's time is the trainer's
``train/step_time_s`` (producer work — scorer passes, generation, rewards — plus forward, backward and optimizer);
the table reports the minimum over the steps after ``--warmup`` (robust to other jobs on a shared machine) and the
median. Teachers are a second tiny model of the same shape (another seed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SFT_ENTRIES = {
    "sft": [], "dft": ["objective.name=dft"], "asft": ["algorithm=asft"], "asft_k3": ["algorithm=asft_k3"],
    "otr (exact)": ["algorithm=otr"], "otr (mc, K=256)": ["algorithm=otr", "objective.args.mode=mc"],
    "curio_sft": ["algorithm=curio_sft"], "poft": ["algorithm=poft"], "masked_ft": ["algorithm=masked_ft"],
    "soft": ["algorithm=soft"], "ift": ["algorithm=ift"], "kd_topk": ["algorithm=kd_topk", "rl.teacher={teacher}"],
    "gkd (λ=0.5)": ["algorithm=gkd", "rl.teacher={teacher}", "rl.max_new_tokens=16"],
    "sft + token weights (FAIT/TL)": ["data.train_path={weighted}"],
    "lfu": ["algorithm=lfu"],
}
RL_ENTRIES = {
    "grpo": ["algorithm=grpo", "objective.kl.coef=0"], "dapo": ["algorithm=dapo", "rl.dynamic_sampling=false"],
    "chord": ["algorithm=chord", "mix.expert_path={data}", "mix.expert_per_step=2"],
    "prefix_rft": ["algorithm=prefix_rft"],
    "opd": ["algorithm=opd", "rl.teacher={teacher}", "rl.rewards="],
    "srppo": ["algorithm=srppo", "rl.teacher={teacher}"],
    "grpo + stop temperature T=4 (TLDR TS)": ["algorithm=grpo", "objective.kl.coef=0", "rl.stop_temperature=4"],
}
WORDS = ["red", "green", "blue", "yellow", "circle", "square", "triangle", "left", "right", "up", "down", "big"]


def _data(folder: Path) -> tuple[Path, Path]:
    rows, weighted = [], []
    for i in range(64):
        answer = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(8 + i % 32))
        row = {"id": f"r{i}", "messages": [{"role": "user", "content": f"List words from {i}."},
                                           {"role": "assistant", "content": answer}], "answer": WORDS[i % len(WORDS)],
               "meta": {"ref_score": -6.0, "length_budget": 10}}
        rows.append(row)
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from mmsft.data.loaders import load_dataset
    from mmsft.models.loading import build_adapter, load_model

    adapter = build_adapter(load_model(str(folder / "student")))
    for row, sample in zip(rows, load_dataset(str(path))):
        count = int(adapter.encode(sample).loss_mask.sum())
        weighted.append({**row, "token_weights": [1.0 + (k % 3 == 0) for k in range(count)]})
    wpath = folder / "weighted.jsonl"
    wpath.write_text("".join(json.dumps(r) + "\n" for r in weighted))
    return path, wpath


def _run(name: str, overrides: list[str], common: list[str], steps: int, warmup: int, out: Path) -> dict:
    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    run = out / name.replace(" ", "_").replace("/", "_")
    cfg = load_config(None, [*common, f"train.output_dir={run}", f"train.max_steps={steps}", *overrides])
    started = time.perf_counter()
    Trainer(cfg).train()
    wall = time.perf_counter() - started
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    times = [r["train/step_time_s"] for r in records if "train/step_time_s" in r][warmup:]
    return {"entry": name, "step_s": min(times), "median_s": statistics.median(times), "steps": len(times),
            "wall_s": wall}


def reward_costs(repeats: int = 5) -> str:
    """Milliseconds per batch of 32 completions for each zoo reward (median of ``repeats``), next to one GRPO step."""
    import sqlite3
    from types import SimpleNamespace

    from mmsft.rewards import get_reward

    folder = Path(tempfile.mkdtemp(prefix="mmsft-reward-costs-"))
    db = folder / "shop.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE items (id INTEGER, name TEXT, price REAL)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item{i}", i * 1.5) for i in range(200)])
    conn.commit()
    conn.close()
    cases = {
        "tldr_length": (SimpleNamespace(id="s", meta={"length_budget": 20}), "word " * 30),
        "json_structure": (SimpleNamespace(id="s", answer={"a": 1, "b": [1, 2]}, meta={}), '{"a": 1, "b": [1, 2]}'),
        "tool_call": (SimpleNamespace(id="s", answer=None, meta={"tool_call": {"name": "f", "arguments": {"x": 1}}}),
                      '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>'),
        "sql_execution": (SimpleNamespace(id="s", answer="SELECT name FROM items WHERE price > 100",
                                          meta={"db_path": str(db)}, source="<memory>"),
                          "SELECT name FROM items WHERE price > 90"),
    }
    lines = ["| reward | ms per 32 completions (median) |", "| --- | --- |"]
    for name, (sample, text) in cases.items():
        fn = get_reward(name)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn([sample] * 32, [text] * 32)
            times.append((time.perf_counter() - started) * 1000)
        lines.append(f"| `{name}` | {statistics.median(times):.1f} |")
    return "\n".join(lines) + "\n"


def decoding_costs(tokens: int = 8, prompts: int = 4) -> str:
    """Seconds per generated token: greedy decoding vs Transfer Q* (k candidates × a greedy baseline continuation)."""
    import torch

    from mmsft.data.loaders import load_dataset
    from mmsft.eval.generation import generate
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.models.tiny import build_tiny
    from mmsft.objectives.transfer_q import TransferQArgs, transfer_q_decode

    torch.set_num_threads(1)
    out = Path(tempfile.mkdtemp(prefix="mmsft-decoding-costs-"))
    shape = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2)
    build_tiny("text", out / "student", seed=0, **shape)
    data, _ = _data(out)
    loaded = load_model(str(out / "student"))
    adapter, model = build_adapter(loaded, max_length=None), loaded.model.eval()
    samples = load_dataset(str(data))[:prompts]
    score = lambda batch, texts: [-len(t) / 100 for t in texts]  # noqa: E731
    rows = [("greedy (HF generate, KV cache)", lambda: generate(model, adapter, samples, max_new_tokens=tokens,
                                                              batch_size=1))]
    for k, cont in ((10, 20), (10, 5), (4, 5)):
        args = TransferQArgs(k=k, continuation_tokens=cont)
        rows.append((f"Transfer Q* k={k}, continuation {cont}",
                     lambda a=args: transfer_q_decode(model, model, adapter, samples, score, a, tokens)))
    lines = ["| decoding | s per generated token | × greedy |", "| --- | --- | --- |"]
    base = None
    for name, fn in rows:
        fn()  # warm-up
        started = time.perf_counter()
        fn()
        per_token = (time.perf_counter() - started) / (tokens * prompts)
        base = base or per_token
        lines.append(f"| {name} | {per_token:.4f} | {per_token / base:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated entry names")
    parser.add_argument("--rewards", action="store_true", help="only time the zoo rewards (objective_rewards.md)")
    parser.add_argument("--decoding", action="store_true", help="only time Transfer Q* vs greedy (objective_decoding.md)")
    args = parser.parse_args()
    if args.decoding:
        table = decoding_costs()
        (ROOT / "benchmarks" / "results" / "objective_decoding.md").write_text(table)
        print(table)
        return
    if args.rewards:
        table = reward_costs()
        (ROOT / "benchmarks" / "results" / "objective_rewards.md").write_text(table)
        print(table)
        return
    import torch

    from mmsft.models.tiny import build_tiny
    from mmsft.rewards import register_reward

    torch.set_num_threads(1)
    register_reward("bench_reward")(lambda samples, completions, **_: [float(len(c) % 7) / 7 for c in completions])
    out = Path(tempfile.mkdtemp(prefix="mmsft-objective-costs-"))
    shape = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2)
    student = build_tiny("text", out / "student", seed=0, **shape)
    teacher = build_tiny("text", out / "teacher", seed=1, **shape)
    data, weighted = _data(out)
    common = [f"model.name_or_path={student}", f"data.train_path={data}", "train.micro_batch_size=8",
              "train.progress=false", "train.tensorboard=false", "train.resume=never", "optim.lr=1e-5",
              "train.torch_threads=1", "rl.prompts_per_step=2", "rl.group_size=4", "rl.max_new_tokens=16",
              "rl.rewards=bench_reward"]
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    wanted = only | {b for b, entries in (("sft", SFT_ENTRIES), ("grpo", RL_ENTRIES)) if only & set(entries)}
    results = []
    for table, entries in (("sft", SFT_ENTRIES), ("rl", RL_ENTRIES)):
        for name, overrides in entries.items():
            if only and name not in wanted:
                continue
            filled = [o.format(teacher=teacher, data=data, weighted=weighted) for o in overrides]
            try:
                result = _run(name, filled, common, args.steps, args.warmup, out)
            except Exception as exc:  # noqa: BLE001 - recorded in the table
                result = {"entry": name, "error": f"{type(exc).__name__}: {exc}"[:200]}
            result["table"] = table
            results.append(result)
            print(json.dumps(result), flush=True)
    same_run = {t: next((r["step_s"] for r in results if r["entry"] == b and "step_s" in r), None)
                for t, b in (("sft", "sft"), ("rl", "grpo"))}
    for r in results:  # each row's ratio against the baseline measured in the same run
        if "step_s" in r and same_run[r["table"]]:
            r["ratio"] = r["step_s"] / same_run[r["table"]]
    results_dir = ROOT / "benchmarks" / "results"
    previous = results_dir / "objective_costs.json"
    if only and previous.exists():  # a partial run updates the stored table (only the named rows)
        order = [*SFT_ENTRIES, *RL_ENTRIES]
        merged = {r["entry"]: r for r in json.loads(previous.read_text())}
        merged.update({r["entry"]: r for r in results if r["entry"] in only})
        results = sorted(merged.values(), key=lambda r: order.index(r["entry"]) if r["entry"] in order else len(order))
    base = {t: next((r["step_s"] for r in results if r["entry"] == b and "step_s" in r), None)
            for t, b in (("sft", "sft"), ("rl", "grpo"))}
    lines = ["| entry | baseline | s/step (min) | s/step (median) | × baseline (min) |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        baseline = "sft" if r["table"] == "sft" else "grpo"
        if "step_s" in r:
            value = r.get("ratio", r["step_s"] / base[r["table"]] if base[r["table"]] else None)
            ratio = f"{value:.2f}" if value is not None else "—"
            median = f"{r['median_s']:.3f}" if "median_s" in r else "—"
            lines.append(f"| `{r['entry']}` | {baseline} | {r['step_s']:.3f} | {median} | {ratio} |")
        else:
            lines.append(f"| `{r['entry']}` | {baseline} | error: {r['error']} | — | — |")
    table = "\n".join(lines) + "\n"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "objective_costs.json").write_text(json.dumps(results, indent=2))
    (results_dir / "objective_costs.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
