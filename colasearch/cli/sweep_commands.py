"""``colasearch sweep``: a grid of runs as one Ray job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from colasearch.cli.app import app
from colasearch.cli.output import JsonOption, QuietOption, print_json


@app.command()
def sweep(
    config_path: Annotated[Path, typer.Argument(help="Sweep YAML: models, tasks, searchers, targets, budget, ...")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for one schedule per cell and the summary.")] = Path("runs/sweep"),
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster to join ('auto', ray://...); default: a local Ray.")] = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Run every cell of a sweep; cells whose schedule already exists are skipped."""
    from rich.console import Console

    from colasearch.distributed.sweep import SweepConfig, run_sweep

    config = SweepConfig.load(config_path)
    rows = run_sweep(config, out_dir, address=address)
    if json_output:
        print_json({"out_dir": str(out_dir), "rows": rows})
    else:
        Console().print((out_dir / "summary.md").read_text())
    failed = [row for row in rows if row["error"]]
    for row in failed:
        sys.stderr.write(f"cell {row['file']}: {row['error']}\n")  # errors show even under --quiet
    if failed:
        raise SystemExit(1)
