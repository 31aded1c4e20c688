"""``colasearch cache list|clear``: the safetensors copies of GGUF models (see colasearch.model_cache)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from colasearch.cli.app import app
from colasearch.cli.output import JsonOption, QuietOption, print_json

cache_app = typer.Typer(help="The converted-model cache: GGUF files dequantized once into safetensors.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("list")
def list_command(json_output: JsonOption = False, quiet: QuietOption = False) -> None:
    """Every cached copy: key, model, dtype, size and folder; legacy copies (path-keyed, from before content keys)
    are marked, as nothing loads them any more."""
    from rich.console import Console
    from rich.table import Table

    from colasearch.model_cache import human_size, list_entries, models_dir

    entries = list_entries()
    if json_output:
        print_json({"folder": str(models_dir()), "entries": [entry.as_dict() for entry in entries]})
        return
    legacy = [entry for entry in entries if entry.legacy]
    title = f"{len(entries)} cached models in {models_dir()}, {human_size(sum(entry.size for entry in entries))}"
    if legacy:
        title += (f"; {len(legacy)} legacy ({human_size(sum(entry.size for entry in legacy))}), unused: "
                  f"colasearch cache clear --legacy")
    table = Table(title=title)
    for column in ("key", "model", "dtype"):
        table.add_column(column, no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("path", overflow="fold", min_width=24)
    for entry in entries:
        dtype = f"{entry.dtype} (legacy)" if entry.legacy else entry.dtype
        table.add_row(entry.key, entry.model, dtype, human_size(entry.size), str(entry.path))
    Console().print(table)


@cache_app.command("clear")
def clear_command(
    key: Annotated[Optional[str], typer.Argument(help="Key (or its first characters) of the copies to delete; "
                                                      "all copies without it.")] = None,
    legacy: Annotated[bool, typer.Option("--legacy", help="Delete only the legacy copies (path-keyed, unused).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Delete one model's cached copies (every dtype), the legacy ones, or all of them; the next load converts again."""
    from colasearch.console import stderr_console
    from colasearch.errors import ColasearchError
    from colasearch.model_cache import human_size, remove_entries, select_entries

    entries = select_entries(key, legacy=legacy)
    console = stderr_console()
    if entries and not yes:
        what = f"{len(entries)} cached cop{'y' if len(entries) == 1 else 'ies'} " \
               f"({human_size(sum(entry.size for entry in entries))})"
        if not typer.confirm(f"delete {what}?", default=False, err=True):
            raise ColasearchError("nothing deleted (pass --yes to delete without asking)")
    freed = remove_entries(entries, leftovers=key is None)
    for entry in entries:
        console.print(f"deleted {entry.model} {entry.dtype}{' legacy' if entry.legacy else ''} ({entry.key})")
    typer.echo(f"freed {human_size(freed)}")
