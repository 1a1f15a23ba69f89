"""Peak memory of the log-prob pass (forward + backward) at a Qwen-sized vocabulary: full logits vs chunked.

Run: ``OMP_NUM_THREADS=1 python benchmarks/logprob_memory.py [--tokens 2048] [--vocab 151936] [--hidden 896]
[--supervised 0.5]``. Writes ``benchmarks/results/logprob_memory.{md,json}``. A measurement, not a test.

The "small trunk" is the hidden states themselves (a leaf tensor ``(rows, T, H)`` that requires grad) and the LM head
is Qwen2.5-0.5B's (896 × 151,936, untied). Methods, each in a fresh subprocess:

* ``full``: what a plain ``model(...).logits`` does — ``head(hidden)`` for every position in fp32, ``log_softmax``,
  gather the targets, mean over the supervised positions, backward;
* ``full_selective``: the same logits, then the log-softmax only at the supervised positions (TRL's
  ``selective_log_softmax`` pattern);
* ``mmsft``: :func:`mmsft.models.logprobs.head_logprobs` (supervised positions only, ≤ 64 MB of logits per chunk,
  recomputed in backward);
* ``trl_chunked``: TRL's ``ChunkedLogProbFunction`` (the kernel behind its fused LM head, TRL ≥ 1.15) called the way
  TRL calls it on a device without Triton (every position scored, 4,096-token × 32,768-vocabulary tiles).

Peak = the process's peak RSS (``ru_maxrss``) minus its resident size right before the pass, with inputs, weights
and the head's gradient buffer allocated beforehand (glibc serves these large blocks with ``mmap``, so freed memory
leaves the RSS and the high-water mark is the real peak). Times are CPU seconds of one pass (1 thread).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import _harness

HERE = Path(__file__).resolve().parent


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(job: dict) -> dict:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    rows, t, h, v = job["rows"], job["tokens"] // job["rows"], job["hidden"], job["vocab"]
    hidden = (torch.randn(rows, t, h, generator=g) * 0.5).requires_grad_(True)
    head = torch.nn.Linear(h, v, bias=False)
    with torch.no_grad():
        head.weight.normal_(0, 0.02, generator=g)
    ids = torch.randint(0, v, (rows, t), generator=g)
    mask = torch.zeros(rows, t, dtype=torch.bool)
    prompt = int(t * (1 - job["supervised"]))
    mask[:, max(prompt, 1):] = True
    head.weight.grad = torch.zeros_like(head.weight)  # allocated before the pass, like a trained model's
    hidden.grad = torch.zeros_like(hidden)
    method = job["method"]
    before = _rss_mb()
    start = time.process_time()
    if method == "full":
        logits = head(hidden).float()
        logp = F.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        loss = -(logp * mask[:, 1:]).sum() / mask.sum()
    elif method == "full_selective":
        logits = head(hidden).float()
        picked = logits[:, :-1][mask[:, 1:]]
        logp = picked.gather(-1, ids[:, 1:][mask[:, 1:]].unsqueeze(-1)).squeeze(-1) - torch.logsumexp(picked, -1)
        loss = -logp.sum() / mask.sum()
    elif method == "mmsft":
        from mmsft.models.logprobs import head_logprobs

        out = head_logprobs(hidden, ids, mask, head)
        loss = -out.logp.sum() / mask.sum()
    elif method == "trl_chunked":
        from trl.kernels import ChunkedLogProbFunction
        from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

        labels = torch.where(mask[:, 1:], ids[:, 1:], -100)
        flat = hidden[:, :-1].reshape(-1, h)
        per_token = ChunkedLogProbFunction.apply(flat, head.weight, None, labels.clamp(min=0).reshape(-1), 1.0,
                                                 _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, ())[0]
        loss = -(per_token.view(labels.shape) * mask[:, 1:]).sum() / mask.sum()
    else:
        raise ValueError(method)
    loss.backward()
    cpu = time.process_time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"peak_mb": peak - before, "cpu_s": cpu, "loss": float(loss),
            "grad_norm": float(hidden.grad.norm()), "logits_mb": rows * t * v * 4 / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2048, help="tokens in the batch (default 2048)")
    parser.add_argument("--rows", type=int, default=2, help="rows the tokens are split into (default 2)")
    parser.add_argument("--vocab", type=int, default=151936, help="vocabulary (default Qwen2.5's 151,936)")
    parser.add_argument("--hidden", type=int, default=896, help="hidden size (default Qwen2.5-0.5B's 896)")
    parser.add_argument("--supervised", type=float, default=0.5, help="fraction of positions under the loss mask")
    parser.add_argument("--methods", default="full,full_selective,mmsft,trl_chunked")
    parser.add_argument("--work-dir", default="/tmp/mmsft_logprob_memory")
    parser.add_argument("--out", default=str(HERE / "results" / "logprob_memory"))
    _harness.add_worker_arguments(parser)
    args = parser.parse_args()
    if _harness.serve_worker(args, {m: worker for m in ("full", "full_selective", "mmsft", "trl_chunked")}):
        return
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        job = {"case": "logprob", "framework": method, "method": method, "work": str(work), "threads": 1,
               "tokens": args.tokens, "rows": args.rows, "vocab": args.vocab, "hidden": args.hidden,
               "supervised": args.supervised}
        res = _harness.run_worker(__file__, job)
        res["method"] = method
        print(f"[logprob_memory] {method}: {res}", flush=True)
        results.append(res)
    full = next((r for r in results if r["method"] == "full" and "peak_mb" in r), None)
    lines = [f"Log-prob pass (forward + backward), {args.tokens} tokens in {args.rows} rows, {args.supervised:.0%} "
             f"supervised, vocabulary {args.vocab:,}, hidden {args.hidden}; full fp32 logits would be "
             f"{args.tokens * args.vocab * 4 / 2**20:,.0f} MB; load average {_harness.load_average()}", "",
             "| method | peak memory MB (RSS above the inputs) | vs full | CPU s | loss |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['method']} | error: {r['error']} | – | – | – |")
            continue
        ratio = f"{r['peak_mb'] / full['peak_mb']:.3f}×" if full else "–"
        lines.append(f"| {r['method']} | {r['peak_mb']:,.0f} | {ratio} | {r['cpu_s']:.2f} | {r['loss']:.5f} |")
    md = "\n".join(lines)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md + "\n")
    out.with_suffix(".json").write_text(json.dumps({"args": {k: v for k, v in vars(args).items()
                                                               if k not in ("worker", "result")}, "results": results},
                                                   indent=2))


if __name__ == "__main__":
    main()
