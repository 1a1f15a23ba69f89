"""SFT throughput: mmsft's trainer against TRL's ``SFTTrainer`` on the same offline model, rows, batch and steps.

Run: ``OMP_NUM_THREADS=1 python benchmarks/sft_throughput.py [--steps 10] [--batch-size 4] [--cases text,vlm]
[--variants mmsft:default,mmsft:packed,trl:default,trl:best]``. Prints a Markdown table (tokens/s, s/step, CPU s/step,
CPU-MFU, peak RSS, ratios) and writes it to ``benchmarks/results/sft_throughput.md`` and ``.json``. No asserts: this is
a measurement, not a test.

Cases (everything is built locally; nothing is downloaded):

* ``text``: ``build_tiny("text", hidden 512, intermediate 1536, 8 layers, 8 heads, 4 KV heads)`` (~26M parameters,
  1k-token BPE vocabulary), on deterministic synthetic rows with variable lengths: prompt 50–400 tokens, answer
  20–200 tokens (uniform, seeded).
* ``vlm``: a ~19M-parameter Qwen2.5-VL (``build_tiny("qwen2.5-vl", hidden 384, 8 layers, vision tower 4 × 256)``)
  on shapes-world image QA rows with 224-px images (64 merged vision tokens each); every third row carries a second
  image.

Variants (``framework:setting``): mmsft ``default`` (``mixed_precision=auto``: bf16 autocast on a CPU with AMX /
AVX-512 BF16), ``packed`` (auto + ``data.packing=true``), ``fp32``, ``fp32-packed``; TRL ``default`` (its
``SFTConfig`` defaults: bf16 autocast, gradient checkpointing), ``best`` (bf16, ``padding_free=True`` for text, no
gradient checkpointing), ``fp32``, ``fp32-best``. Everything else is held equal: rows, micro-batch, steps, AdamW (lr
1e-5, betas 0.9/0.999, no weight decay, fused on both sides), cosine schedule without warm-up, grad clipping 1.0,
completion-only loss, no eval, no checkpoints, the torch thread count.

Timing, identical on both sides: the wall time between consecutive optimizer-step ends, median over the steps after
``--warmup``, and the process CPU time over the same steps (steadier on a shared machine). Tokens: non-padding tokens
per step (mmsft from ``metrics.jsonl``, TRL from a wrapper around its collator). CPU-MFU = required model FLOPs per
CPU second ÷ the measured dense-matmul peak (FLOP per CPU second of a 1024³ matmul) of the run's dtype. Required
FLOPs count what the data needs and nothing more, identically for both frameworks: 6 × (decoder linear parameters) per
non-padding token, 6 × (LM-head parameters) per supervised token, and causal attention 6 × layers × width × L² / 1
per row of length L (forward 2·L²·width, backward twice that) — so a framework that runs the LM head on prompt
positions or attends over padding does that work without credit. See docs/benchmarks.md for measured tables.
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
def prepare_text(work: Path, rows: int, prompt_tokens: tuple[int, int], answer_tokens: tuple[int, int]) -> dict:
    """Tiny text model + deterministic synthetic rows of uniform random lengths in the given (low, high) token ranges
    (mmsft JSONL and TRL prompt/completion JSONL)."""
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
        ids = tok(" ".join(words), add_special_tokens=False)["input_ids"][:n_tokens]
        return tok.decode(ids)

    mmsft_path, trl_path = work / f"text_mmsft_{rows}.jsonl", work / f"text_trl_{rows}.jsonl"
    with open(mmsft_path, "w") as fm, open(trl_path, "w") as ft:
        for i in range(rows):
            prompt, answer = text_of(rng.randint(*prompt_tokens)), text_of(rng.randint(*answer_tokens))
            fm.write(json.dumps({"id": f"t{i}", "messages": [
                {"role": "user", "content": [{"type": "text", "text": prompt}]},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}]}) + "\n")
            ft.write(json.dumps({"prompt": [{"role": "user", "content": prompt}],
                                 "completion": [{"role": "assistant", "content": answer}]}) + "\n")
    return {"model": str(model_dir), "mmsft_data": str(mmsft_path), "trl_data": str(trl_path)}


VLM_MODEL = dict(hidden_size=384, intermediate_size=1152, num_hidden_layers=8, num_attention_heads=6,
                 num_key_value_heads=2, vision_depth=4, vision_hidden_size=256, vision_intermediate_size=512,
                 vision_num_heads=4, vision_fullatt_block_indexes=[3], vision_window_size=112,
                 min_pixels=4 * 28 * 28, max_pixels=64 * 28 * 28)  # 224 px → 8 × 8 merged tokens


def prepare_vlm(work: Path, rows: int) -> dict:
    """~19M Qwen2.5-VL + shapes-world image QA rows at 224 px; every third row gets the next row's image as a second
    image. The TRL copy carries the image paths in ``images``."""
    from mmsft.data.shapes import generate_shapes_qa
    from mmsft.models.tiny import build_tiny

    model_dir = work / "vlm224_model"
    if not (model_dir / "config.json").exists():
        build_tiny("qwen2.5-vl", model_dir, **VLM_MODEL)
    summary = generate_shapes_qa(work / "shapes224", rows + 1, 0, seed=0, image_size=224,
                                 kinds=["image-colour", "image-shape", "image-count"])
    src = Path(summary["train"])
    base = [json.loads(line) for line in src.read_text().splitlines()]
    mmsft_path, trl_path = work / f"vlm_mmsft_{rows}.jsonl", work / f"vlm_trl_{rows}.jsonl"
    with open(mmsft_path, "w") as fm, open(trl_path, "w") as ft:
        for i, row in enumerate(base[:rows]):
            *prompt_msgs, target = row["messages"]
            content = list(prompt_msgs[0]["content"])
            if i % 3 == 0:  # a second image, from the next row
                extra = next(p for p in base[i + 1]["messages"][0]["content"] if p["type"] == "image")
                content = [dict(extra), {"type": "text", "text": "Ignore the first image."}, *content]
            for part in content:
                if part["type"] == "image":
                    part["image"] = str((src.parent / part["image"]).resolve())
            answer = target["content"] if isinstance(target["content"], str) else "".join(
                p.get("text", "") for p in target["content"] if p["type"] == "text")
            fm.write(json.dumps({"id": f"v{i}", "messages": [{"role": "user", "content": content},
                                                              {"role": "assistant", "content": answer}]}) + "\n")
            images = [p["image"] for p in content if p["type"] == "image"]
            parts = [{"type": "image"} if p["type"] == "image" else {"type": "text", "text": p["text"]} for p in content]
            ft.write(json.dumps({"prompt": [{"role": "user", "content": parts}], "completion": [
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}], "images": images}) + "\n")
    return {"model": str(model_dir), "mmsft_data": str(mmsft_path), "trl_data": str(trl_path),
            "media_root": str(src.parent)}


# --------------------------------------------------------------------------------------------------------------
# Workers (one fresh subprocess per case × framework)
_peak_rss_mb = _harness.peak_rss_mb


MMSFT_SETTINGS = {"default": [], "packed": ["data.packing=true"], "fp32": ["train.mixed_precision=no"],
                  "fp32-packed": ["train.mixed_precision=no", "data.packing=true"]}
TRL_SETTINGS = {"default": {},  # SFTConfig defaults: bf16=True (autocast on CPU), gradient_checkpointing=True
                "best": {"bf16": True, "gradient_checkpointing": False, "padding_free": True},
                "fp32": {"bf16": False, "gradient_checkpointing": False},
                "fp32-best": {"bf16": False, "gradient_checkpointing": False, "padding_free": True}}


def worker_mmsft(job: dict) -> dict:
    from mmsft.config import load_config
    from mmsft.train.trainer import Trainer

    out = Path(job["work"]) / f"run_mmsft_{job['case']}_{job['setting']}"
    metrics_file = out / "metrics.jsonl"
    if metrics_file.exists():
        metrics_file.unlink()
    overrides = [f"model.name_or_path={job['model']}", f"data.train_path={job['mmsft_data']}",
                 f"train.output_dir={out}", f"train.max_steps={job['steps']}",
                 f"train.micro_batch_size={job['batch_size']}", "train.progress=false", "train.tensorboard=false",
                 "train.resume=never", f"train.torch_threads={job['threads']}", f"optim.lr={LR}",
                 "optim.scheduler=cosine", "optim.max_grad_norm=1.0", "train.save_total_limit=1",
                 "data.max_length=4096", *MMSFT_SETTINGS[job["setting"]]]
    if job.get("media_root"):
        overrides.append(f"data.media_roots={job['media_root']}")
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
    trainer = Trainer(load_config(None, overrides))
    trainer.train()
    precision = str(trainer.accelerator.mixed_precision)
    records = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    records = [r for r in records if "train/step_time_s" in r]
    records.sort(key=lambda r: r["step"])
    ends = [r["time"] for r in records]  # logger clock at each step end
    step_s = [b - a for a, b in zip(ends, ends[1:])]  # step k (k >= 2) wall time, end to end
    tokens = [r["train/tokens_per_s"] * r["train/step_time_s"] for r in records[1:]]
    return {"step_s": step_s, "cpu_step_s": [b - a for a, b in zip(cpu_ends, cpu_ends[1:])],
            "tokens": [round(t) for t in tokens],
            "inner_step_s": [r["train/step_time_s"] for r in records[1:]],
            "loss_first_last": [records[0]["train/loss"], records[-1]["train/loss"]], "peak_rss_mb": _peak_rss_mb(),
            "dtype": "bfloat16" if precision == "bf16" else "float32"}


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

    setting = dict(TRL_SETTINGS[job["setting"]])
    if vlm:
        setting["padding_free"] = False  # TRL: "Padding-free training is yet not supported for vision datasets"
    if setting.get("padding_free"):
        setting["max_length"] = None  # TRL refuses max_length with padding_free and no packing; rows are < 1k tokens
    cfg = trl.SFTConfig(output_dir=str(Path(job["work"]) / f"run_trl_{job['case']}"), max_steps=job["steps"],
                        per_device_train_batch_size=job["batch_size"], gradient_accumulation_steps=1,
                        learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0,
                        adam_beta1=0.9, adam_beta2=0.999, max_grad_norm=1.0, completion_only_loss=True,
                        fp16=False, use_cpu=True, save_strategy="no", eval_strategy="no", report_to=[],
                        logging_steps=1, disable_tqdm=True, dataloader_num_workers=0, seed=0,
                        **{"max_length": 4096, **setting})
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
            "peak_rss_mb": _peak_rss_mb(), "versions": {"trl": trl.__version__, "transformers": transformers.__version__},
            "dtype": "bfloat16" if cfg.bf16 else "float32"}


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
            "loss_first_last": ok[0]["loss_first_last"], "dtype": ok[0]["dtype"],
            **({"versions": ok[0]["versions"]} if "versions" in ok[0] else {})}


def required_flops(prep: dict, case: str) -> dict:
    """Per-token average of the FLOPs the rows need (module docstring), from mmsft's own encoding of every row."""
    import torch

    from mmsft.config import load_config
    from mmsft.data.loaders import load_dataset
    from mmsft.data.schema import MediaPolicy
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.train.trainer import media_budget

    loaded = load_model(prep["model"])
    cfg = load_config(None, [f"model.name_or_path={prep['model']}"])
    adapter = build_adapter(loaded, media_budget(cfg), max_length=4096)
    media = MediaPolicy.from_config([prep["media_root"]] if prep.get("media_root") else [], False)
    samples = load_dataset(prep["mmsft_data"], media=media)
    model = loaded.model
    head = model.get_output_embeddings()
    text_linear = vision_linear = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module is not head:
            if "visual" in name:
                vision_linear += module.weight.numel()
            else:
                text_linear += module.weight.numel()
    text = model.config.get_text_config()
    width = text.num_attention_heads * (getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads)
    total_tokens, flops = 0, 0.0
    for sample in samples:
        enc = adapter.encode(sample)
        n, sup = len(enc), int(enc.loss_mask.sum())
        patches = int(enc.mm["pixel_values"].shape[0]) if "pixel_values" in enc.mm else 0
        flops += 6 * text_linear * n + 6 * head.weight.numel() * sup + 6 * text.num_hidden_layers * width * n * n
        flops += 6 * vision_linear * patches
        total_tokens += n
    return {"flops_per_token": flops / total_tokens, "rows": len(samples), "mean_tokens": total_tokens / len(samples),
            "params": sum(p.numel() for p in model.parameters())}


PAIRS = {"mmsft:default": "trl:default", "mmsft:packed": "trl:best", "mmsft:fp32": "trl:fp32",
         "mmsft:fp32-packed": "trl:fp32-best"}


def table(rows: list[dict]) -> str:
    lines = ["| case | variant | dtype | steps (measured) | tokens/step | CPU s/step (median) | wall s/step (median) "
             "| tokens/CPU-s | CPU-MFU | peak RSS MB | compared with | ratio (tokens/CPU-s) | ratio (tokens/s wall) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['variant']} | – | {r['steps']} | – | – | – | – | – | – | – | "
                         f"error: {r['error']} | – |")
            continue
        fmt = lambda v: "–" if v is None else f"{v:.2f}×"  # noqa: E731
        lines.append(f"| {r['case']} | {r['variant']} | {r['dtype']} | {r['steps']} ({r['measured_steps']}) "
                     f"| {r['tokens_per_step']:.0f} | {r['median_cpu_s_per_step']:.3f} | {r['median_s_per_step']:.3f} "
                     f"| {r['tokens_per_cpu_s']:.0f} | {100 * r['mfu']:.0f} % | {r['peak_rss_mb']:.0f} "
                     f"| {r.get('against', '–')} | {fmt(r.get('ratio_cpu'))} | {fmt(r.get('ratio'))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=0, help="optimizer steps per run (default: 10 text, 12 vlm)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per variant, alternating the order (steps pooled; more rounds average out load)")
    parser.add_argument("--warmup", type=int, default=3, help="leading steps excluded from timing (default 3)")
    parser.add_argument("--batch-size", type=int, default=4, help="micro-batch size, both sides (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default 1)")
    parser.add_argument("--cases", default="text,vlm", help="comma-separated subset of text,vlm")
    parser.add_argument("--variants", default="mmsft:default,mmsft:packed,trl:default,trl:best,mmsft:fp32-packed,"
                                              "trl:fp32-best",
                        help="comma-separated framework:setting (mmsft: default, packed, fp32, fp32-packed; trl: "
                             "default, best, fp32, fp32-best); packed variants are skipped for the vlm case")
    parser.add_argument("--rows", type=int, default=0,
                        help="training rows (default: steps × batch, i.e. one epoch, every sample encoded once)")
    parser.add_argument("--prompt-tokens", default="50,400", help="text case: prompt length range in tokens")
    parser.add_argument("--answer-tokens", default="20,200", help="text case: answer length range in tokens")
    parser.add_argument("--work-dir", default="/tmp/mmsft_sft_bench", help="models, data and run folders")
    parser.add_argument("--out", default=str(HERE / "results" / "sft_throughput"), help="result path stem (.md, .json)")
    _harness.add_worker_arguments(parser)
    args = parser.parse_args()

    if _harness.serve_worker(args, {"mmsft": worker_mmsft, "trl": worker_trl}):
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        fw, _, setting = v.partition(":")
        if setting not in {"mmsft": MMSFT_SETTINGS, "trl": TRL_SETTINGS}.get(fw, {}):
            raise SystemExit(f"unknown variant {v!r}; expected mmsft:{{{','.join(MMSFT_SETTINGS)}}} or "
                             f"trl:{{{','.join(TRL_SETTINGS)}}}")
    peaks = {d: _harness.matmul_peak_flops(d) for d in ("float32", "bfloat16")}
    print(f"[sft_throughput] measured 1024³ matmul peak per CPU-s: fp32 {peaks['float32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s", flush=True)
    low_high = lambda text: tuple(int(x) for x in text.split(","))  # noqa: E731
    results: list[dict] = []
    workloads: dict[str, dict] = {}
    loads: list[str] = [_harness.load_average()]
    for case in cases:
        steps = args.steps or (10 if case == "text" else 12)
        rows_needed = args.rows or max(steps * args.batch_size, 8)
        prep = (prepare_text(work, rows_needed, low_high(args.prompt_tokens), low_high(args.answer_tokens))
                if case == "text" else prepare_vlm(work, rows_needed) if case == "vlm" else None)
        if prep is None:
            raise SystemExit(f"unknown case {case!r}; expected text or vlm")
        workload = required_flops(prep, case)
        workloads[case] = workload
        print(f"[sft_throughput] {case}: {workload['params'] / 1e6:.1f}M parameters, {workload['rows']} rows, "
              f"{workload['mean_tokens']:.0f} tokens/row, {workload['flops_per_token'] / 1e6:.1f} MFLOP/token", flush=True)
        case_variants = [v for v in variants if not (case == "vlm" and v.startswith("mmsft:") and "packed" in v)]
        runs: dict[str, list[dict]] = {v: [] for v in case_variants}
        for rnd in range(args.rounds):
            order = case_variants if rnd % 2 == 0 else case_variants[::-1]  # alternate to spread background load
            for variant in order:
                fw, _, setting = variant.partition(":")
                job = {"case": f"{case}_{setting}", "framework": fw, "setting": setting, "work": str(work),
                       "steps": steps, "batch_size": args.batch_size, "threads": args.threads, **prep}
                print(f"[sft_throughput] {case} / {variant} (round {rnd + 1}/{args.rounds}): {steps} steps × batch "
                      f"{args.batch_size} ...", flush=True)
                res = run_worker(job)
                loads.append(_harness.load_average())
                runs[variant].append(res)
                one = summarise([res], args.warmup)
                note = one.get("error") or (f"{one['tokens_per_cpu_s']:.0f} tokens/CPU-s, {one['median_cpu_s_per_step']:.3f} "
                                            f"CPU s/step, {one['median_s_per_step']:.3f} wall s/step")
                print(f"[sft_throughput]   -> {note}", flush=True)
        by_variant = {}
        for variant, rs in runs.items():
            row = {"case": case, "variant": variant, "steps": steps, **summarise(rs, args.warmup)}
            if "tokens_per_cpu_s" in row:
                row["mfu"] = row["tokens_per_cpu_s"] * workload["flops_per_token"] / peaks[row["dtype"]]
            by_variant[variant] = row
        for variant, row in by_variant.items():
            other = by_variant.get(PAIRS.get(variant, ""), {})
            if "tokens_per_s" in row and "tokens_per_s" in other:
                row["against"] = PAIRS[variant]
                row["ratio"] = row["tokens_per_s"] / other["tokens_per_s"]
                row["ratio_cpu"] = row["tokens_per_cpu_s"] / other["tokens_per_cpu_s"]
            results.append(row)

    import transformers
    import trl

    machine = (f"{platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
               f"(threads={args.threads}), transformers {transformers.__version__}, trl {trl.__version__}; "
               f"matmul peak per CPU-s fp32 {peaks['float32'] / 1e9:.0f} / bf16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s; "
               f"load average (1/5/15 min) before and after each run: {'; '.join(loads)}")
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
                                                     "machine": machine, "peaks": peaks, "workloads": workloads,
                                                     "results": results}, indent=2))


if __name__ == "__main__":
    main()
