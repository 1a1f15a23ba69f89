"""SFT throughput: mmsft's trainer against TRL's ``SFTTrainer`` on the same offline model, data, batch and steps.

Run: ``OMP_NUM_THREADS=1 python benchmarks/sft_throughput.py [--steps 10] [--batch-size 4] [--threads 1]
[--cases text,vlm]``. Prints a Markdown table (tokens/s, s/step, peak RSS, ratio mmsft / TRL) and writes it to
``benchmarks/results/sft_throughput.md`` and ``.json``. No asserts: this is a measurement, not a test.

Cases (everything is built locally; nothing is downloaded):

* ``text``: ``build_tiny("text", hidden 512, intermediate 1536, 8 layers, 8 heads, 4 KV heads)`` (~26M parameters,
  1k-token BPE vocabulary), on deterministic synthetic prompt/completion rows (~200-token prompts, ~50-token answers).
* ``vlm``: the tiny Qwen2.5-VL (``build_tiny("qwen2.5-vl")``) on shapes-world image QA rows (colour, shape, count).

Each (case, framework) runs in its own fresh subprocess so peak RSS (``ru_maxrss``) is per side. Both sides use the
same rows, micro-batch size, step count, AdamW (lr 1e-5, betas 0.9/0.999, no weight decay), cosine schedule without
warm-up, grad clipping at 1.0, fp32 on CPU, no gradient checkpointing (TRL's SFTConfig defaults to it; it is switched
off here so both sides do the same work), completion-only loss, no eval, no checkpoints, the same torch thread count.

Timing, identical on both sides: the wall time between consecutive optimizer-step ends (data collation, forward,
backward, optimizer and per-step logging included), median over the steps after ``--warmup``. Tokens: non-padding
tokens (``attention_mask.sum()``) of the micro-batches of those steps; mmsft's come from ``metrics.jsonl``
(``train/tokens_per_s × train/step_time_s``), TRL's from a wrapper around its data collator. CPU time per step
(``time.process_time()`` at the same step ends) is recorded too: on a shared machine it is steadier than wall time.
By default rows = steps × batch (one epoch: every sample is encoded once); ``--rows`` smaller gives several epochs,
where mmsft's per-sample encoding cache applies. See docs/benchmarks.md for measured tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import _harness  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

HERE = Path(__file__).resolve().parent
LR = 1e-5
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
         "romeo sierra tango uniform victor whiskey xray yankee zulu red green blue yellow circle square triangle "
         "one two three four five six seven eight nine ten left right up down small large bright dark").split()


# --------------------------------------------------------------------------------------------------------------
# Preparation (parent process)
def prepare_text(work: Path, rows: int, prompt_tokens: int, answer_tokens: int) -> dict:
    """Tiny text model + deterministic synthetic rows (mmsft JSONL and TRL prompt/completion JSONL)."""
    from transformers import AutoTokenizer

    from mmsft.models.tiny import build_tiny

    model_dir = work / "text_model"
    if not (model_dir / "config.json").exists():
        build_tiny("text", model_dir, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                   num_attention_heads=8, num_key_value_heads=4)
    tok = AutoTokenizer.from_pretrained(model_dir)
    rng = random.Random(0)

    def text_of(n_tokens: int) -> str:
        words: list[str] = []
        while len(tok(" ".join(words), add_special_tokens=False)["input_ids"]) < n_tokens:
            words.extend(rng.choice(WORDS) for _ in range(8))
        return " ".join(words)

    mmsft_path, trl_path = work / "text_mmsft.jsonl", work / "text_trl.jsonl"
    with open(mmsft_path, "w") as fm, open(trl_path, "w") as ft:
        for i in range(rows):
            prompt, answer = text_of(prompt_tokens), text_of(answer_tokens)
            fm.write(json.dumps({"id": f"t{i}", "messages": [
                {"role": "user", "content": [{"type": "text", "text": prompt}]},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}]}) + "\n")
            ft.write(json.dumps({"prompt": [{"role": "user", "content": prompt}],
                                 "completion": [{"role": "assistant", "content": answer}]}) + "\n")
    return {"model": str(model_dir), "mmsft_data": str(mmsft_path), "trl_data": str(trl_path)}


def prepare_vlm(work: Path, rows: int) -> dict:
    """Tiny Qwen2.5-VL + shapes-world image QA rows; the TRL copy carries the image paths in ``images``."""
    from mmsft.data.shapes import generate_shapes_qa
    from mmsft.models.tiny import build_tiny

    model_dir = work / "vlm_model"
    if not (model_dir / "config.json").exists():
        build_tiny("qwen2.5-vl", model_dir)
    summary = generate_shapes_qa(work / "shapes", rows, 0, seed=0, kinds=["image-colour", "image-shape", "image-count"])
    src = Path(summary["train"])
    trl_path = work / "vlm_trl.jsonl"
    with open(src) as fin, open(trl_path, "w") as fout:
        for line in fin:
            row = json.loads(line)
            *prompt_msgs, target = row["messages"]
            images: list[str] = []
            prompt = []
            for msg in prompt_msgs:
                content = msg["content"] if isinstance(msg["content"], list) else [{"type": "text", "text": msg["content"]}]
                parts = []
                for part in content:
                    if part["type"] == "image":
                        images.append(str((src.parent / part["image"]).resolve()))
                        parts.append({"type": "image"})
                    else:
                        parts.append({"type": "text", "text": part["text"]})
                prompt.append({"role": msg["role"], "content": parts})
            answer = target["content"] if isinstance(target["content"], str) else "".join(
                p.get("text", "") for p in target["content"] if p["type"] == "text")
            fout.write(json.dumps({"prompt": prompt, "completion": [
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}], "images": images}) + "\n")
    return {"model": str(model_dir), "mmsft_data": str(src), "trl_data": str(trl_path)}


# --------------------------------------------------------------------------------------------------------------
# Workers (one fresh subprocess per case × framework)
_peak_rss_mb = _harness.peak_rss_mb


def worker_mmsft(job: dict) -> dict:
    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    out = Path(job["work"]) / f"run_mmsft_{job['case']}"
    metrics_file = out / "metrics.jsonl"
    if metrics_file.exists():
        metrics_file.unlink()
    overrides = [f"model.name_or_path={job['model']}", f"data.train_path={job['mmsft_data']}",
                 f"train.output_dir={out}", f"train.max_steps={job['steps']}",
                 f"train.micro_batch_size={job['batch_size']}", "train.progress=false", "train.tensorboard=false",
                 "train.resume=never", f"train.torch_threads={job['threads']}", f"optim.lr={LR}",
                 "optim.scheduler=cosine", "optim.max_grad_norm=1.0", "train.save_total_limit=1"]
    # Instrumentation only: note the process CPU clock whenever the trainer logs a step (logging_steps=1), so the
    # CPU time per step can be compared with TRL's (robust to other processes sharing the cores).
    from mmsft.train import logging as mm_logging

    cpu_ends: list[float] = []
    original_log = mm_logging.MetricsLogger.log

    def log_with_cpu_clock(self, step, metrics):
        if "train/step_time_s" in metrics:
            cpu_ends.append(time.process_time())
        return original_log(self, step, metrics)

    mm_logging.MetricsLogger.log = log_with_cpu_clock
    Trainer(load_config(None, overrides)).train()
    records = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    records = [r for r in records if "train/step_time_s" in r]
    records.sort(key=lambda r: r["step"])
    ends = [r["time"] for r in records]  # logger clock at each step end
    step_s = [b - a for a, b in zip(ends, ends[1:])]  # step k (k >= 2) wall time, end to end
    tokens = [r["train/tokens_per_s"] * r["train/step_time_s"] for r in records[1:]]
    return {"step_s": step_s, "cpu_step_s": [b - a for a, b in zip(cpu_ends, cpu_ends[1:])],
            "tokens": [round(t) for t in tokens],
            "inner_step_s": [r["train/step_time_s"] for r in records[1:]],
            "loss_first_last": [records[0]["train/loss"], records[-1]["train/loss"]], "peak_rss_mb": _peak_rss_mb()}


def worker_trl(job: dict) -> dict:
    import torch
    import transformers
    import trl
    from datasets import load_dataset
    from transformers import TrainerCallback

    torch.set_num_threads(job["threads"])
    vlm = job["case"] == "vlm"
    ds = load_dataset("json", data_files=job["trl_data"], split="train")
    if vlm:
        from datasets import Image, Sequence

        ds = ds.cast_column("images", Sequence(Image()))  # paths -> PIL images, decoded on access
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processing = AutoProcessor.from_pretrained(job["model"])
        model = AutoModelForImageTextToText.from_pretrained(job["model"], dtype=torch.float32)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        processing = AutoTokenizer.from_pretrained(job["model"])
        model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32)

    cfg = trl.SFTConfig(output_dir=str(Path(job["work"]) / f"run_trl_{job['case']}"), max_steps=job["steps"],
                        per_device_train_batch_size=job["batch_size"], gradient_accumulation_steps=1,
                        learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0,
                        adam_beta1=0.9, adam_beta2=0.999, max_grad_norm=1.0, completion_only_loss=True,
                        gradient_checkpointing=False, bf16=False, fp16=False, use_cpu=True,
                        save_strategy="no", eval_strategy="no", report_to=[], logging_steps=1,
                        disable_tqdm=True, dataloader_num_workers=0, max_length=2048, seed=0)
    trainer = trl.SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=processing)

    batch_tokens: list[int] = []
    collate = trainer.data_collator

    def counting_collator(examples):
        batch = collate(examples)
        mask = batch.get("attention_mask")
        batch_tokens.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        return batch

    trainer.data_collator = counting_collator
    ends: list[float] = []
    cpu_ends: list[float] = []
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    trainer.add_callback(Clock())
    trainer.train()
    step_s = [b - a for a, b in zip(ends, ends[1:])]
    return {"step_s": step_s, "cpu_step_s": [b - a for a, b in zip(cpu_ends, cpu_ends[1:])],
            "tokens": batch_tokens[1:len(ends)],
            "loss_first_last": [losses[0], losses[-1]] if losses else [],
            "peak_rss_mb": _peak_rss_mb(), "versions": {"trl": trl.__version__, "transformers": transformers.__version__}}


def run_worker(job: dict) -> dict:
    return _harness.run_worker(__file__, job)


# --------------------------------------------------------------------------------------------------------------
def summarise(runs: list[dict], warmup: int) -> dict:
    """Pool the post-warm-up steps of one (case, framework) over its rounds."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    # step_s[i] is the wall time of step i+2 (1-based, end to end); skip steps <= warmup.
    skip = max(warmup - 1, 0)
    step_s, cpu_s, tokens = [], [], []
    for r in ok:
        n = min(len(r["step_s"]), len(r["cpu_step_s"]), len(r["tokens"]))
        step_s += r["step_s"][skip:n]
        cpu_s += r["cpu_step_s"][skip:n]
        tokens += r["tokens"][skip:n]
    if not step_s:
        return {**ok[0], "error": "no steps after warm-up; raise --steps"}
    return {"runs": runs, "rounds": len(ok), "measured_steps": len(step_s),
            "median_s_per_step": statistics.median(step_s), "median_cpu_s_per_step": statistics.median(cpu_s),
            "tokens_per_s": sum(tokens) / sum(step_s), "tokens_per_cpu_s": sum(tokens) / sum(cpu_s),
            "tokens_per_step": sum(tokens) / len(tokens), "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
            "loss_first_last": ok[0]["loss_first_last"], **({"versions": ok[0]["versions"]} if "versions" in ok[0] else {})}


def table(rows: list[dict]) -> str:
    lines = ["| case | framework | steps × rounds (measured) | tokens/step | tokens/s (wall) | s/step (median wall) "
             "| CPU s/step (median) | peak RSS MB | ratio vs TRL: tokens/s wall | ratio vs TRL: tokens/CPU-s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['framework']} | {r['steps']} | – | – | – | – | – | error: {r['error']} | – |")
            continue
        fmt = lambda v: "–" if v is None else f"{v:.2f}×"  # noqa: E731
        lines.append(f"| {r['case']} | {r['framework']} | {r['steps']} × {r['rounds']} ({r['measured_steps']}) "
                     f"| {r['tokens_per_step']:.0f} | {r['tokens_per_s']:.0f} | {r['median_s_per_step']:.3f} "
                     f"| {r['median_cpu_s_per_step']:.3f} | {r['peak_rss_mb']:.0f} | {fmt(r.get('ratio'))} "
                     f"| {fmt(r.get('ratio_cpu'))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=0,
                        help="optimizer steps per run (default: 10 for text, 40 for the much faster tiny VLM)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per side, alternating the order (steps pooled; more rounds average out load)")
    parser.add_argument("--warmup", type=int, default=3, help="leading steps excluded from timing (default 3)")
    parser.add_argument("--batch-size", type=int, default=4, help="micro-batch size, both sides (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default 1)")
    parser.add_argument("--cases", default="text,vlm", help="comma-separated subset of text,vlm")
    parser.add_argument("--frameworks", default="mmsft,trl", help="comma-separated subset of mmsft,trl")
    parser.add_argument("--rows", type=int, default=0,
                        help="training rows (default: steps × batch, i.e. one epoch, every sample encoded once)")
    parser.add_argument("--prompt-tokens", type=int, default=200, help="text case: prompt length in tokens")
    parser.add_argument("--answer-tokens", type=int, default=50, help="text case: answer length in tokens")
    parser.add_argument("--work-dir", default="/tmp/mmsft_sft_bench", help="models, data and run folders")
    parser.add_argument("--out", default=str(HERE / "results" / "sft_throughput"), help="result path stem (.md, .json)")
    _harness.add_worker_arguments(parser)
    args = parser.parse_args()

    if _harness.serve_worker(args, {"mmsft": worker_mmsft, "trl": worker_trl}):
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    rows_needed = args.rows or max((args.steps or 40) * args.batch_size, 8)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    results: list[dict] = []
    for case in cases:
        prep = (prepare_text(work, rows_needed, args.prompt_tokens, args.answer_tokens) if case == "text"
                else prepare_vlm(work, rows_needed) if case == "vlm" else None)
        if prep is None:
            raise SystemExit(f"unknown case {case!r}; expected text or vlm")
        steps = args.steps or (10 if case == "text" else 40)
        runs: dict[str, list[dict]] = {fw: [] for fw in frameworks}
        for rnd in range(args.rounds):
            order = frameworks if rnd % 2 == 0 else frameworks[::-1]  # alternate to spread background load
            for fw in order:
                job = {"case": case, "framework": fw, "work": str(work), "steps": steps,
                       "batch_size": args.batch_size, "threads": args.threads, **prep}
                print(f"[sft_throughput] {case} / {fw} (round {rnd + 1}/{args.rounds}): {steps} steps × batch "
                      f"{args.batch_size} ...", flush=True)
                res = run_worker(job)
                runs[fw].append(res)
                one = summarise([res], args.warmup)
                note = one.get("error") or (f"{one['tokens_per_s']:.0f} tokens/s, {one['median_s_per_step']:.3f} s/step, "
                                            f"{one['median_cpu_s_per_step']:.3f} CPU s/step")
                print(f"[sft_throughput]   -> {note}", flush=True)
        by_fw = {fw: {"case": case, "framework": fw, "steps": steps, **summarise(rs, args.warmup)} for fw, rs in runs.items()}
        trl_row = by_fw.get("trl", {})
        for r in by_fw.values():
            if "tokens_per_s" in r and "tokens_per_s" in trl_row:
                r["ratio"] = r["tokens_per_s"] / trl_row["tokens_per_s"]
                r["ratio_cpu"] = r["tokens_per_cpu_s"] / trl_row["tokens_per_cpu_s"]
            results.append(r)

    import torch
    import transformers
    import trl

    machine = (f"{platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
               f"(threads={args.threads}), transformers {transformers.__version__}, trl {trl.__version__}, "
               f"CUDA available: {torch.cuda.is_available()} (benchmark runs on CPU)")
    md = table(results)
    header = (f"SFT throughput, mmsft vs TRL SFTTrainer · first {args.warmup} steps of each run excluded · "
              f"micro-batch {args.batch_size} · {machine}")
    print()
    print(header)
    print()
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(f"{header}\n\n{md}\n")
    out.with_suffix(".json").write_text(json.dumps({"args": {k: v for k, v in vars(args).items()
                                                               if k not in ("worker", "result")},
                                                     "machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
