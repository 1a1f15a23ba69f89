"""GRPO step: mmsft's RL trainer against TRL's ``GRPOTrainer`` on the same offline model, prompts and rollout shape.

Run: ``OMP_NUM_THREADS=1 python benchmarks/grpo_step.py [--steps 6] [--warmup 2] [--cases text,text_kl,vlm]``.
Prints a Markdown table (s/step, steps/s, generation share, peak RSS, ratio mmsft / TRL step rate) and a profile of
where each side's step time goes, and writes both to ``benchmarks/results/grpo_step.md`` and ``.json``. No asserts:
this is a measurement, not a test.

One step, identical on both sides: 8 prompts × group size 8 = 64 completions sampled with temperature 1.0 (no top-k /
top-p), at most 128 new tokens, KV-cached HF ``generate``; one reward (a plain Python function of the completion text,
below); group-normalised advantages (mean/std); one optimizer step per rollout batch (on-policy: no old-log-prob
pass, ratio 1), the 64 sequences in one micro-batch; clipped surrogate with per-sequence token mean (TRL
``loss_type="grpo"``, mmsft preset ``grpo`` = ``seq-mean-token-mean``); AdamW lr 1e-6, constant schedule, grad
clipping at 1.0; no gradient checkpointing; the same torch thread count. Precision (``--precision``): ``default``
leaves each framework at its default — TRL's ``GRPOConfig`` has ``bf16=True`` (autocast on CPU), mmsft's
``mixed_precision=auto`` picks bf16 autocast on a CPU with AMX / AVX-512 BF16 for hidden size ≥ 128 (the text model;
the 0.22M tiny VLM stays fp32 on mmsft's side) and runs its rollouts under the same autocast; ``fp32`` pins both
to fp32.

Cases (everything is built locally; nothing is downloaded):

* ``text``: ``build_tiny("text", hidden 256, intermediate 768, 4 layers, 4 heads, 2 KV heads)``, beta 0 (no
  reference model) — mmsft ``objective.kl.coef=0``, TRL ``beta=0.0``.
* ``text_kl``: the same with beta 0.04 (k3 KL as a loss against a frozen reference copy; one extra no-grad forward of
  the reference per step on both sides).
* ``vlm``: the tiny Qwen2.5-VL (``build_tiny("qwen2.5-vl")``) on shapes-world colour questions with one image each,
  beta 0. If a side fails (e.g. TRL cannot run it offline on CPU) the error is recorded in the table.

Each (case, framework) runs in its own fresh subprocess so peak RSS (``ru_maxrss``) is per side. Timing, identical on
both sides: the wall time between consecutive optimizer-step ends (rollout, reward, advantages, log-prob passes,
forward, backward, optimizer and per-step logging included), median over the steps after ``--warmup``. Generation
share: time inside the sampling call (mmsft ``time/generation_s``, which also covers the — negligible — reward call;
TRL: a timer around ``_generate_single_turn``) divided by the step time. The profile splits each step further into
no-grad log-prob passes (reference / old policy) and the training forward + backward + optimizer.

The cores are often shared with other work, which inflates wall times unevenly; the table therefore also gives the
process CPU time per step (``time.process_time`` between step ends, single-threaded torch), the generation share of it
(CPU time inside the same sampling calls) and the ratio of CPU step rates, which are much more stable under load.
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
LR = 1e-6
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima red green blue yellow circle "
         "square triangle one two three four five small large bright dark").split()
KEYWORDS = ("circle", "red", "blue")


def keyword_length_reward(text: str) -> float:
    """The benchmark's reward (same function on both sides): a length term plus a keyword bonus."""
    lower = text.lower()
    return min(len(text), 120) / 120.0 + 0.5 * sum(k in lower for k in KEYWORDS)


# --------------------------------------------------------------------------------------------------------------
# Preparation (parent process)
def prepare_text(work: Path, rows: int) -> dict:
    from mmsft.models.tiny import build_tiny

    model_dir = work / "text_model"
    if not (model_dir / "config.json").exists():
        build_tiny("text", model_dir, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                   num_attention_heads=4, num_key_value_heads=2)
    rng = random.Random(0)
    mmsft_path, trl_path = work / "text_mmsft.jsonl", work / "text_trl.jsonl"
    with open(mmsft_path, "w") as fm, open(trl_path, "w") as ft:
        for i in range(rows):
            a, b, c = rng.sample(WORDS, 3)
            prompt = f"Write one short sentence that uses the words {a}, {b} and {c}."
            fm.write(json.dumps({"id": f"p{i}", "messages": [{"role": "user", "content": prompt}], "answer": c}) + "\n")
            ft.write(json.dumps({"prompt": [{"role": "user", "content": prompt}], "answer": c}) + "\n")
    return {"model": str(model_dir), "mmsft_data": str(mmsft_path), "trl_data": str(trl_path)}


def prepare_vlm(work: Path, rows: int) -> dict:
    """Tiny Qwen2.5-VL + shapes-world colour questions (one image each); the TRL copy carries image paths."""
    from mmsft.data.shapes import generate_shapes_qa
    from mmsft.models.tiny import build_tiny

    model_dir = work / "vlm_model"
    if not (model_dir / "config.json").exists():
        build_tiny("qwen2.5-vl", model_dir)
    summary = generate_shapes_qa(work / "shapes", rows, 0, seed=0, kinds=["image-colour"])
    src = Path(summary["train"])
    mmsft_path, trl_path = work / "vlm_mmsft.jsonl", work / "vlm_trl.jsonl"
    with open(src) as fin, open(mmsft_path, "w") as fm, open(trl_path, "w") as ft:
        for line in fin:
            row = json.loads(line)
            prompt_msgs = [m for m in row["messages"] if m["role"] != "assistant"]
            images: list[str] = []
            trl_prompt, mm_prompt = [], []
            for msg in prompt_msgs:
                content = msg["content"] if isinstance(msg["content"], list) else [{"type": "text", "text": msg["content"]}]
                parts, mm_parts = [], []
                for part in content:
                    if part["type"] == "image":
                        path = str((src.parent / part["image"]).resolve())
                        images.append(path)
                        parts.append({"type": "image"})
                        mm_parts.append({"type": "image", "image": path})
                    else:
                        parts.append({"type": "text", "text": part["text"]})
                        mm_parts.append(part)
                trl_prompt.append({"role": msg["role"], "content": parts})
                mm_prompt.append({"role": msg["role"], "content": mm_parts})
            fm.write(json.dumps({"id": row.get("id", f"v{len(images)}"), "messages": mm_prompt,
                                 "answer": row.get("answer")}) + "\n")
            ft.write(json.dumps({"prompt": trl_prompt, "images": images}) + "\n")
    return {"model": str(model_dir), "mmsft_data": str(mmsft_path), "trl_data": str(trl_path)}


# --------------------------------------------------------------------------------------------------------------
# Workers (one fresh subprocess per case × framework)
_peak_rss_mb = _harness.peak_rss_mb


def worker_mmsft(job: dict) -> dict:
    from mmsft.config import load_config
    from mmsft.rewards import register_reward
    from mmsft.train import logging as mm_logging
    from mmsft.train.trainer import Trainer

    @register_reward("bench_keyword_length")
    def bench_reward(samples, completions, **_):
        return [keyword_length_reward(text) for text in completions]

    out = Path(job["work"]) / f"run_mmsft_{job['case']}"
    overrides = ["algorithm=grpo", f"model.name_or_path={job['model']}", f"data.train_path={job['mmsft_data']}",
                 f"train.output_dir={out}", f"train.max_steps={job['steps']}", "rl.prompts_per_step=8",
                 f"rl.group_size={job['group_size']}", f"rl.max_new_tokens={job['max_new_tokens']}",
                 "rl.temperature=1.0", f"objective.kl.coef={job['beta']}", "rl.rewards=bench_keyword_length",
                 f"train.micro_batch_size={8 * job['group_size']}", "train.progress=false", "train.tensorboard=false",
                 "train.resume=never", f"train.torch_threads={job['threads']}", f"optim.lr={LR}",
                 "optim.scheduler=constant", "optim.max_grad_norm=1.0", "train.save_total_limit=1",
                 f"train.mixed_precision={'no' if job['precision'] == 'fp32' else 'auto'}"]
    # Instrumentation only: wall and CPU clocks whenever the trainer logs a step (logging_steps=1).
    ends: list[float] = []
    cpu_ends: list[float] = []
    records: list[dict] = []
    original_log = mm_logging.MetricsLogger.log

    def log_with_clock(self, step, metrics):
        if "train/step_time_s" in metrics:
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())
            records.append({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        return original_log(self, step, metrics)

    mm_logging.MetricsLogger.log = log_with_clock
    from mmsft.rollout import engine as mm_engine

    gen_cpu: list[float] = []
    original_generate = mm_engine.HFGenerateEngine.generate

    def generate_with_clock(self, prompts, params):
        t = time.process_time()
        try:
            return original_generate(self, prompts, params)
        finally:
            gen_cpu.append(time.process_time() - t)

    mm_engine.HFGenerateEngine.generate = generate_with_clock
    Trainer(load_config(None, overrides)).train()
    # step_s[i] is the wall time of step i+2 (end to end); the per-step parts are aligned to it.
    return {"step_s": [b - a for a, b in zip(ends, ends[1:])], "cpu_step_s": [b - a for a, b in zip(cpu_ends, cpu_ends[1:])],
            "generation_s": [r.get("time/generation_s", 0.0) for r in records[1:]], "generation_cpu_s": gen_cpu[1:len(ends)],
            "logprob_s": [r.get("time/logprob_passes_s", 0.0) for r in records[1:]],
            "inner_step_s": [r["train/step_time_s"] for r in records[1:]],
            "completion_len": [r.get("rollout/response_length", 0.0) for r in records[1:]],
            "reward": [r.get("reward/total", 0.0) for r in records[1:]],
            "peak_rss_mb": _peak_rss_mb()}


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

        ds = ds.cast_column("images", Sequence(Image()))

    def reward_fn(prompts, completions, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        texts = [t if isinstance(t, str) else "".join(p.get("text", "") for p in t) for t in texts]
        return [keyword_length_reward(t) for t in texts]

    batch = 8 * job["group_size"]
    cfg = trl.GRPOConfig(output_dir=str(Path(job["work"]) / f"run_trl_{job['case']}"), max_steps=job["steps"],
                         per_device_train_batch_size=batch, gradient_accumulation_steps=1, steps_per_generation=1,
                         num_generations=job["group_size"], max_completion_length=job["max_new_tokens"],
                         temperature=1.0, top_p=1.0, top_k=0, beta=job["beta"], loss_type="grpo", scale_rewards="group",
                         num_iterations=1, learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0,
                         weight_decay=0.0, max_grad_norm=1.0, gradient_checkpointing=False,
                         bf16=job["precision"] != "fp32", fp16=False,
                         use_cpu=True, report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
                         dataloader_num_workers=0, seed=0, log_completions=False)
    trainer = trl.GRPOTrainer(model=job["model"], reward_funcs=[reward_fn], args=cfg, train_dataset=ds)

    # Instrumentation only: timers around TRL's sampling call and its no-grad log-prob passes (ref / old policy).
    gen_s: list[float] = [0.0]
    gen_cpu: list[float] = [0.0]
    logp_s: list[float] = [0.0]
    orig_gen = trainer._generate_single_turn
    orig_logp = trainer._get_per_token_logps_and_entropies

    def timed_gen(*a, **k):
        t, c = time.perf_counter(), time.process_time()
        try:
            return orig_gen(*a, **k)
        finally:
            gen_s[-1] += time.perf_counter() - t
            gen_cpu[-1] += time.process_time() - c

    def timed_logp(*a, **k):
        if torch.is_grad_enabled():  # the training forward
            return orig_logp(*a, **k)
        t = time.perf_counter()
        try:
            return orig_logp(*a, **k)
        finally:
            logp_s[-1] += time.perf_counter() - t

    trainer._generate_single_turn = timed_gen
    trainer._get_per_token_logps_and_entropies = timed_logp
    ends: list[float] = []
    cpu_ends: list[float] = []
    logs: list[dict] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())
            gen_s.append(0.0)
            gen_cpu.append(0.0)
            logp_s.append(0.0)

        def on_log(self, args, state, control, logs_=None, **kwargs):
            entry = kwargs.get("logs") or logs_ or {}
            if "loss" in entry or "reward" in entry:
                logs.append(dict(entry))

    trainer.add_callback(Clock())
    trainer.train()
    n = len(ends)
    return {"step_s": [b - a for a, b in zip(ends, ends[1:])], "cpu_step_s": [b - a for a, b in zip(cpu_ends, cpu_ends[1:])],
            "generation_s": gen_s[1:n], "generation_cpu_s": gen_cpu[1:n], "logprob_s": logp_s[1:n],
            "completion_len": [float(e.get("completions/mean_length", 0.0)) for e in logs[1:n]],
            "reward": [float(e.get("reward", 0.0)) for e in logs[1:n]],
            "peak_rss_mb": _peak_rss_mb(), "versions": {"trl": trl.__version__, "transformers": transformers.__version__}}


def run_worker(job: dict) -> dict:
    return _harness.run_worker(__file__, job)


# --------------------------------------------------------------------------------------------------------------
def summarise(res: dict, warmup: int) -> dict:
    if "error" in res:
        return res
    skip = max(warmup - 1, 0)  # step_s[i] is step i+2 (1-based)
    n = len(res["step_s"])
    cut = lambda key: res.get(key, [])[skip:n]  # noqa: E731
    step_s = cut("step_s")
    if not step_s:
        return {**res, "error": "no steps after warm-up; raise --steps"}
    med = statistics.median
    gen, logp = cut("generation_s"), cut("logprob_s")
    total = sum(step_s)
    out = {"measured_steps": len(step_s), "median_s_per_step": med(step_s), "steps_per_s": 1.0 / med(step_s),
           "median_cpu_s_per_step": med(cut("cpu_step_s")) if cut("cpu_step_s") else None,
           "generation_share": sum(gen) / total if gen else None,
           "generation_cpu_share": (sum(cut("generation_cpu_s")) / sum(cut("cpu_step_s"))
                                    if cut("generation_cpu_s") and cut("cpu_step_s") else None),
           "median_generation_s": med(gen) if gen else None,
           "median_logprob_s": med(logp) if logp else None,
           "median_train_s": med([s - g - l for s, g, l in zip(step_s, gen, logp)]) if gen and logp else None,
           "mean_completion_len": statistics.mean(cut("completion_len")) if cut("completion_len") else None,
           "peak_rss_mb": res["peak_rss_mb"], "process_wall_s": res["process_wall_s"], "raw": res}
    if res.get("inner_step_s"):
        out["median_outside_step_s"] = med([s - i for s, i in zip(step_s, cut("inner_step_s"))])
    if "versions" in res:
        out["versions"] = res["versions"]
    return out


def _f(v, spec: str, suffix: str = "") -> str:
    return "–" if v is None else f"{v:{spec}}{suffix}"


def table(rows: list[dict]) -> str:
    lines = ["| case | framework | s/step (median) | steps/s | generation share | peak RSS MB | ratio vs TRL (step rate) "
             "| CPU s/step (median) | generation share of CPU | ratio vs TRL (CPU) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['framework']} | – | – | – | – | error: {r['error']} | – | – | – |")
            continue
        share = None if r["generation_share"] is None else 100 * r["generation_share"]
        cpu_share = None if r.get("generation_cpu_share") is None else 100 * r["generation_cpu_share"]
        lines.append(f"| {r['case']} | {r['framework']} | {r['median_s_per_step']:.3f} | {r['steps_per_s']:.3f} "
                     f"| {_f(share, '.0f', ' %')} | {r['peak_rss_mb']:.0f} | {_f(r.get('ratio'), '.2f', '×')} "
                     f"| {_f(r['median_cpu_s_per_step'], '.3f')} | {_f(cpu_share, '.0f', ' %')} "
                     f"| {_f(r.get('ratio_cpu'), '.2f', '×')} |")
    return "\n".join(lines)


def profile(rows: list[dict]) -> str:
    lines = ["| case | framework | step s | generation s | no-grad log-prob passes s | fwd + bwd + optim (+ rest) s "
             "| CPU s/step | mean completion tokens |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            continue
        lines.append(f"| {r['case']} | {r['framework']} | {r['median_s_per_step']:.3f} | {_f(r['median_generation_s'], '.3f')} "
                     f"| {_f(r['median_logprob_s'], '.3f')} | {_f(r['median_train_s'], '.3f')} "
                     f"| {_f(r['median_cpu_s_per_step'], '.3f')} | {_f(r['mean_completion_len'], '.1f')} |")
    return "\n".join(lines)


CASES = {"text": ("text", 0.0), "text_kl": ("text", 0.04), "vlm": ("vlm", 0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per run (default 6)")
    parser.add_argument("--warmup", type=int, default=2, help="leading steps excluded from timing (default 2)")
    parser.add_argument("--cases", default="text,text_kl,vlm", help="comma-separated subset of text,text_kl,vlm")
    parser.add_argument("--frameworks", default="mmsft,trl", help="comma-separated subset of mmsft,trl")
    parser.add_argument("--group-size", type=int, default=8, help="completions per prompt (8 prompts per step)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--precision", default="default", choices=("default", "fp32"),
                        help="default: each framework's default precision (bf16 autocast on AMX CPUs); fp32: both fp32")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default 1)")
    parser.add_argument("--work-dir", default="/tmp/mmsft_grpo_bench", help="models, data and run folders")
    parser.add_argument("--out", default=str(HERE / "results" / "grpo_step"), help="result path stem (.md, .json)")
    _harness.add_worker_arguments(parser)
    args = parser.parse_args()

    if _harness.serve_worker(args, {"mmsft": worker_mmsft, "trl": worker_trl}):
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    rows_needed = max(8 * (args.steps + 1), 16)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; expected a subset of {sorted(CASES)}")
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    preps: dict[str, dict] = {}
    results: list[dict] = []
    for case in cases:
        kind, beta = CASES[case]
        if kind not in preps:
            preps[kind] = prepare_text(work, rows_needed) if kind == "text" else prepare_vlm(work, rows_needed)
        by_fw = {}
        for fw in frameworks:
            job = {"case": case, "framework": fw, "work": str(work), "steps": args.steps, "beta": beta,
                   "group_size": args.group_size, "max_new_tokens": args.max_new_tokens, "threads": args.threads,
                   "precision": args.precision,
                   **preps[kind]}
            print(f"[grpo_step] {case} / {fw}: {args.steps} steps of 8 prompts × {args.group_size}, beta {beta} ...",
                  flush=True)
            row = {"case": case, "framework": fw, "beta": beta, **summarise(run_worker(job), args.warmup)}
            note = row.get("error") or (f"{row['median_s_per_step']:.3f} s/step, generation "
                                         f"{_f(row['median_generation_s'], '.3f')} s, peak RSS {row['peak_rss_mb']:.0f} MB")
            print(f"[grpo_step]   -> {note}", flush=True)
            by_fw[fw] = row
        trl_row = by_fw.get("trl", {})
        for r in by_fw.values():
            if "steps_per_s" in r and "steps_per_s" in trl_row:
                r["ratio"] = r["steps_per_s"] / trl_row["steps_per_s"]
                if r.get("median_cpu_s_per_step") and trl_row.get("median_cpu_s_per_step"):
                    r["ratio_cpu"] = trl_row["median_cpu_s_per_step"] / r["median_cpu_s_per_step"]
            results.append(r)

    import torch
    import transformers
    import trl

    machine = (f"{platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
               f"(threads={args.threads}), transformers {transformers.__version__}, trl {trl.__version__}, precision "
               f"{args.precision}; load average {_harness.load_average()}")
    header = (f"GRPO step, mmsft vs TRL GRPOTrainer · 8 prompts × {args.group_size} completions · max "
              f"{args.max_new_tokens} new tokens · {args.steps} steps per run, first {args.warmup} excluded · {machine}")
    md = f"{header}\n\n{table(results)}\n\nWhere the step time goes (medians):\n\n{profile(results)}\n"
    print()
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps({"args": {k: v for k, v in vars(args).items()
                                                               if k not in ("worker", "result")},
                                                     "machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
