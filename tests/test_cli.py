"""The CLI documents every subcommand; README, CI and the generated config reference stay in sync."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmsft.cli import _core_commands, build_parser, main
from mmsft.plugins import plugin_commands

ROOT = Path(__file__).resolve().parents[1]


def _all_commands() -> list[tuple[str, ...]]:
    return sorted({**_core_commands(), **plugin_commands()})


@pytest.mark.parametrize("path", _all_commands(), ids=lambda p: " ".join(p))
def test_every_subcommand_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.strip().startswith("usage: mmsft " + " ".join(path))


def test_top_level_help_lists_commands(capsys):
    build_parser().print_help()
    out = capsys.readouterr().out
    for name in ("train", "eval", "models", "demo", "data", "eval-libero", "eval-puzzles"):
        assert name in out


def test_train_help_config_and_bad_override(capsys):
    assert main(["train", "--help-config"]) == 0
    assert "`optim.lr`" in capsys.readouterr().out
    from mmsft.config import ConfigError

    assert main(["train", "optim.lrr=3", "--print-config"]) == 2
    assert capsys.readouterr().err == "mmsft train: error: unknown config key 'optim.lrr'. Did you mean 'lr'?\n"
    with pytest.raises(ConfigError, match="Did you mean 'lr'"):
        main(["train", "optim.lrr=3", "--print-config", "--debug"])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^# run the test suite\n(.+)$", readme, flags=re.MULTILINE)
    assert match, "README.md must state the test command under '# run the test suite'"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "# run the test suite" in ci and "README.md" in ci
    assert match.group(1).strip().endswith("tests")


def test_config_reference_is_current():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_config_docs
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "config.md").read_text() == gen_config_docs.render(), \
        "docs/config.md is stale: run python scripts/gen_config_docs.py"


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "mmsft.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "mmsft" in result.stdout
