"""Options every command that prints a table shares: ``--json`` (one JSON object instead) and ``--quiet``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from colasearch.console import set_quiet


def _quiet_callback(value: bool) -> bool:
    set_quiet(value)  # each command sets it afresh, so one invocation never leaks into the next
    return value


JsonOption = Annotated[bool, typer.Option("--json/--no-json", help="Print one JSON object on stdout instead of tables.")]
QuietOption = Annotated[bool, typer.Option(
    "--quiet/--no-quiet", "-q", callback=_quiet_callback,
    help="No progress bars or notes on stderr: only the result (table or --json) and errors.")]


def print_json(data) -> None:
    typer.echo(json.dumps(data, default=str))
