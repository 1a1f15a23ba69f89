"""Helpers shared by the config-driven commands (stdlib only at import time)."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default=None, help="YAML config file (optional)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides applied after the YAML, e.g. optim.lr=1e-4 lora.enabled=true")
    parser.add_argument("--help-config", action="store_true", help="print every config key with its default and help")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def resolve_config(args: argparse.Namespace):
    """Load defaults ⊕ YAML ⊕ overrides; a first positional containing '=' is an override, not a file."""
    from mmsft.config import load_config

    config_path, overrides = args.config, list(args.overrides)
    if config_path and "=" in config_path:
        overrides.insert(0, config_path)
        config_path = None
    return load_config(config_path, overrides)


def handle_config_flags(args: argparse.Namespace) -> bool:
    """Print the reference or the resolved config when asked; True means the command is done."""
    import yaml

    from mmsft.config import component_reference, config_reference, to_dict

    if args.help_config:
        print(config_reference())
        print(component_reference())
        return True
    if args.print_config:
        print(yaml.safe_dump(to_dict(resolve_config(args)), sort_keys=False))
        return True
    return False
