"""Modules behind the core ``mmsft`` subcommands (stdlib-only at import; see :mod:`mmsft.cli`)."""
