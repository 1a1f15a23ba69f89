"""``mmsft train CONFIG.yaml key=value ...``: fine-tune a model; everything lands in ``train.output_dir``."""

from __future__ import annotations

import argparse

from mmsft.commands._common import add_config_arguments, handle_config_flags, resolve_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.epilog = ("Runs on one CPU process or under `accelerate launch` on several GPUs. "
                     "The run directory holds config.yaml, metrics.jsonl, tensorboard/, checkpoints/, final/ and "
                     "summary.json; train.resume=auto continues from the latest checkpoint.")


def run(args: argparse.Namespace) -> int:
    if handle_config_flags(args):
        return 0
    from mmsft.train.trainer import Trainer

    result = Trainer(resolve_config(args)).train()
    print(f"run directory: {result.run_dir}  final model: {result.final_model_dir}")
    return 0
