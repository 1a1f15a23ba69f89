"""The ``mmsft`` command line.

Core subcommands (``train``, ``eval``, ``run``, ``models build-tiny``, ``demo``) live in :mod:`mmsft`. Subcommands that
belong to a task (puzzle data building, LIBERO evaluation and data collection, studies) are contributed by plugins —
the ``mmsft.plugins`` entry points declared by task packages — through their ``COMMANDS`` mapping
(:func:`mmsft.plugins.plugin_commands`); ``mmsft`` never names a task module. Each command module exposes::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

Command modules import only the standard library at module level; heavy imports (torch, mujoco, ...) happen inside
``run`` so that ``mmsft --help`` is fast and optional extras are needed only by the command that uses them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from mmsft.plugins import plugin_commands


def _core_commands() -> dict[tuple[str, ...], tuple[str, str]]:
    return {
        ("train",): ("mmsft.commands.train", "Train a model: mmsft train CONFIG.yaml key=value ..."),
        ("eval",): ("mmsft.commands.evaluate", "Evaluate a model on a dataset: mmsft eval CONFIG.yaml key=value ..."),
        ("models", "build-tiny"): ("mmsft.commands.build_tiny", "Write a tiny offline model folder (text, qwen2-vl, qwen2.5-vl, vla)."),
        ("run",): ("mmsft.commands.run", "Run a multi-stage pipeline with evaluations after every stage: mmsft run PIPELINE.yaml"),
        ("continual",): ("mmsft.commands.continual", "Continual post-training experiments: mmsft continual EXPERIMENT.yaml | report RUN_DIR"),
        ("demo",): ("mmsft.commands.demo", "The embedded default job: tiny VLM, generated image+video QA, eval/train/eval."),
        ("report",): ("mmsft.commands.report", "Write report.html for a run, pipeline or study folder: mmsft report RUN_DIR"),
        ("doctor",): ("mmsft.commands.doctor", "Check what this machine can do (versions, video decode, rendering, bf16, GPUs, extras)."),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmsft",
        description="Multimodal and embodied post-training: SFT, RL from verifiable rewards, on-policy distillation.",
    )
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    commands = {**plugin_commands(), **_core_commands()}
    for path, (module_name, help_text) in sorted(commands.items()):
        container = top
        for depth, name in enumerate(path[:-1]):
            key = " ".join(path[: depth + 1])
            if key not in groups:
                group_parser = container.add_parser(name, help=f"{name} subcommands")
                groups[key] = group_parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")
                group_parser.set_defaults(_group_parser=group_parser)
            container = groups[key]
        sub = container.add_parser(path[-1], help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # report when the command is used, not on every invocation of the CLI
            sub.add_argument("rest", nargs=argparse.REMAINDER)
            sub.set_defaults(_run=_unavailable(" ".join(path), module_name, exc))
            continue
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def _unavailable(command: str, module_name: str, exc: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(f"mmsft {command}: unavailable because {module_name} failed to import ({exc}); "
              "install the extra it needs (see README)", file=sys.stderr)
        return 2

    return run


def _command_name(args: argparse.Namespace) -> str:
    words = [args.command] if getattr(args, "command", None) else []
    while words and getattr(args, f"{words[-1]}_command", None):
        words.append(getattr(args, f"{words[-1]}_command"))
    return " ".join(["mmsft", *words])


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. A bad-input error (see :mod:`mmsft.errors`) prints ``mmsft <command>: error: <message>`` on
    one line and returns 2; ``--debug`` (anywhere on the line) re-raises it with its traceback."""
    from mmsft.errors import EXIT_CODE, one_line, user_error_types

    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:cut]
    argv = [a for i, a in enumerate(argv) if not (i < cut and a == "--debug")]
    args = argparse.Namespace()
    try:
        parser = build_parser()
        parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also after the command)")
        args = parser.parse_args(argv)
        run: Callable[[argparse.Namespace], int] | None = getattr(args, "_run", None)
        if run is None:
            (getattr(args, "_group_parser", None) or parser).print_help()
            return 0 if args.command is None else 2
        return int(run(args) or 0)
    except user_error_types() as exc:
        if debug:
            raise
        print(f"{_command_name(args)}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
