"""The ``colasearch`` command line. Each command group lives in its own module and registers on ``app``."""

from colasearch.cli.app import app, main

__all__ = ["app", "main"]
