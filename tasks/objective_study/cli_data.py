"""``mmsft data token-weights --method fait|pkt --model M IN.jsonl OUT.jsonl``: per-token loss weights for
token-weighted CE (FAIT, arXiv 2503.16913; TL-Training, arXiv 2412.15495), computed against the model's own encoding
of each row (see :mod:`mmsft.data.transforms_weights`). OUT is written next to IN when rows name media files."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="JSONL dataset (mmsft schema)")
    parser.add_argument("output", help="JSONL to write (rows with token_weights)")
    parser.add_argument("--method", required=True, choices=("fait", "pkt"), help="fait: diff against meta.negative; "
                        "pkt: TL-Training key tool tokens")
    parser.add_argument("--model", required=True, help="model folder whose tokenizer/adapter defines the tokens")
    parser.add_argument("--line-weight", type=float, default=1.0, help="FAIT a_line")
    parser.add_argument("--token-weight", type=float, default=1.0, help="FAIT a_tok")
    parser.add_argument("--max-weight", type=float, default=9.0, help="TL-Training w_max")
    parser.add_argument("--param-weight", type=float, default=1.0, help="TL-Training argument-value token weight")
    parser.add_argument("--no-normalize", action="store_true", help="keep raw weights (no per-sample mean 1)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mmsft.data.loaders import load_dataset
    from mmsft.data.transforms_weights import FaitArgs, PktArgs, fait_weights, pkt_weights
    from mmsft.models.loading import build_adapter, load_model

    adapter = build_adapter(load_model(args.model))
    samples = load_dataset(args.input)
    if args.method == "fait":
        options = FaitArgs(args.line_weight, args.token_weight, not args.no_normalize)
        weights = [fait_weights(s, adapter, options) for s in samples]
    else:
        options = PktArgs(args.max_weight, args.param_weight, not args.no_normalize)
        weights = [pkt_weights(s, adapter, options) for s in samples]
    rows = [json.loads(x) for x in Path(args.input).read_text(encoding="utf-8").splitlines() if x.strip()]
    with open(args.output, "w", encoding="utf-8") as handle:
        for row, w in zip(rows, weights):
            handle.write(json.dumps({**row, "token_weights": [round(v, 6) for v in w]}, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows with {args.method} token weights to {args.output}", file=sys.stderr)
    return 0
