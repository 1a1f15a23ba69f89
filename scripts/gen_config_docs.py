"""Regenerate docs/config.md from the config dataclasses: ``python scripts/gen_config_docs.py``."""

from __future__ import annotations

from pathlib import Path

from mmsft.config import component_reference, config_reference

HEADER = """# Config reference

Generated from `mmsft/config.py` by `python scripts/gen_config_docs.py`; do not edit by hand.
Set keys in a YAML file (sections as mappings) or on the command line as `section.key=value`:
`mmsft train recipe.yaml optim.lr=1e-4 lora.enabled=true`. `mmsft train --help-config` prints the same table.

"""


COMPONENTS = """
## Components and their own arguments

An objective is a composition: a loss with its own arguments (`objective.args`), a KL term (`objective.kl`), an entropy
bonus, and on the RL side an advantage estimator with its own arguments (`rl.advantage_args`) and a sampling filter.
Unknown arguments fail at load time naming the component and the nearest valid argument.

"""


def render() -> str:
    return HEADER + config_reference() + COMPONENTS + component_reference()


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "docs" / "config.md"
    target.write_text(render())
    print(f"wrote {target}")
