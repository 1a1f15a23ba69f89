"""The error types that mean "bad input", as opposed to a bug.

Each is raised with a one-line message naming the file, line, sample, key or path and what was expected. The CLI
prints such an error as ``mmsft <command>: error: <message>`` on stderr and exits with :data:`EXIT_CODE`
(``--debug`` shows the traceback); every other exception is a bug and keeps its traceback.

The types live next to the code that raises them; this module only lists them by ``module:name`` and resolves them
from modules already imported (an error cannot have been raised by a module that was never imported), so importing
it costs nothing. Code outside :mod:`mmsft` (task packages, plugins) adds its own types with
:func:`register_user_error`.
"""

from __future__ import annotations

import sys
from typing import TypeVar

EXIT_CODE = 2

USER_ERRORS: tuple[str, ...] = (
    "mmsft.config_base:ConfigError",
    "mmsft.data.schema:DataError",
    "mmsft.registry:RegistryError",
    "mmsft.plugins:PluginError",
    "mmsft.rewards.registry:RewardError",
    "mmsft.models.loading:ModelLoadError",
    "mmsft.models.action_tokenizer:ActionTokenizerMismatchError",
    "mmsft.train.trainer:TrainingError",
    "mmsft.train.checkpoint:CheckpointError",
    "mmsft.train.state_files:StateFileError",
)
"""Our error types by ``module:class``."""

_registered: list[type[BaseException]] = []
E = TypeVar("E", bound=type[BaseException])


def register_user_error(cls: E) -> E:
    """Mark an exception type (e.g. a task package's data error) as a bad-input error; usable as a decorator."""
    if cls not in _registered:
        _registered.append(cls)
    return cls


def user_error_types() -> tuple[type[BaseException], ...]:
    """The listed types whose modules are imported, the registered ones, and ``OSError`` (missing files, ...)."""
    found: list[type[BaseException]] = []
    for spec in USER_ERRORS:
        module_name, _, name = spec.partition(":")
        module = sys.modules.get(module_name)
        cls = getattr(module, name, None) if module is not None else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return (*found, *_registered, OSError)


def is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, user_error_types())


def one_line(exc: BaseException) -> str:
    """The message on one line (line breaks become '; '); the type name when the message is empty."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__
