"""Typer app and the error contract: bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="colasearch",
    help="Find, run and ship layer schedules (skip, repeat, reorder) for Hugging Face causal LMs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        from colasearch import __version__

        typer.echo(f"colasearch {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    config: Annotated[Optional[Path], typer.Option(
        "--config", envvar="COLASEARCH_CONFIG", show_envvar=True,
        help="Config file of option defaults; it may set any option. Without it, a colasearch.yaml here may "
             "set only options that neither reach the network, load code, destroy data nor write elsewhere.",
    )] = None,
) -> None:
    """Find, run and ship layer schedules (skip, repeat, reorder) for Hugging Face causal LMs."""
    from colasearch.cli.project_config import CONFIG_ENV, find_config, project_defaults

    # Set here, before the subcommand's context exists, so that it inherits these defaults.
    # Typer carries its own copy of click, so the source is compared by name.
    from_env = getattr(ctx.get_parameter_source("config"), "name", None) == "ENVIRONMENT"
    defaults, applied = project_defaults(ctx.command, find_config(config, CONFIG_ENV if from_env else "--config"))
    if defaults is not None:
        ctx.default_map = defaults
    if applied is not None:
        sys.stderr.write(applied + "\n")  # a file changed what this command does: say which and how


COMMAND_MODULES = ("runtime_commands", "eval_commands", "run_commands", "export_commands", "sweep_commands",
                   "cache_commands", "dashboard_commands")


def _register_commands() -> None:
    """Import each command module for its side effect: it adds its commands to ``app``."""
    import importlib
    import importlib.util

    for name in COMMAND_MODULES:
        module = f"colasearch.cli.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def fail(message: str) -> None:
    """Print one clear line and exit 2."""
    line = message.strip().splitlines()[0] if message.strip() else "failed"
    if len(line) > 280:  # never echo unbounded input back
        line = line[:277] + "..."
    sys.stderr.write(f"colasearch: error: {line}\n")
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    from colasearch.errors import ColasearchError

    # Offline by design: never reach for a model hub, and keep a local Ray on loopback.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _register_commands()
    try:
        app(args=argv, prog_name="colasearch", standalone_mode=True)
    except ColasearchError as error:
        fail(str(error))
