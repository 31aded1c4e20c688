"""Where progress and notes go: stderr, so stdout carries only results; silent under ``--quiet``."""

from __future__ import annotations

import os

# An environment variable, not a global: Ray workers and library code (model conversion) see it too.
QUIET_VARIABLE = "COLASEARCH_QUIET"


def is_quiet() -> bool:
    return os.environ.get(QUIET_VARIABLE) == "1"


def set_quiet(quiet: bool) -> None:
    if quiet:
        os.environ[QUIET_VARIABLE] = "1"
    else:
        os.environ.pop(QUIET_VARIABLE, None)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, quiet=is_quiet())
