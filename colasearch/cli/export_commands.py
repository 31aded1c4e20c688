"""Commands that ship and inspect a schedule: export, validate and show."""

from __future__ import annotations

import contextlib
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from colasearch.cli.app import app
from colasearch.cli.output import JsonOption, QuietOption
from colasearch.cli.options import DeviceOption, load, placement

ScheduleArgument = Annotated[Path, typer.Argument(help="Schedule file (YAML, or its JSON export).")]
OptionalModel = Annotated[
    Optional[str], typer.Option("--model", "-m", help="Hugging Face id, local folder, .gguf file or 'smollm2-135m'.")
]


class ExportFormat(str, Enum):
    checkpoint = "checkpoint"
    mergekit = "mergekit"
    json = "json"


@contextlib.contextmanager
def _writing(target: Path):
    """An output path that cannot be written is bad input, not a crash."""
    from colasearch.errors import ColasearchError

    try:
        yield
    except OSError as error:
        raise ColasearchError(f"cannot write {target}: {error.strerror or error}") from None


def _model_name(schedule, model: str | None) -> str:
    from colasearch.errors import ColasearchError

    name = model or schedule.model.name
    if not name:
        raise ColasearchError("the schedule names no model: pass --model")
    return name


def _load_named(schedule, model: str | None, device: str, dtype: str):
    """The model the flag names, or else the one the schedule names.

    ``run`` names a local GGUF or folder by its stem (a shipped file must not hold a local path), so a
    name from the schedule that loads neither as an alias, a folder nor a cached hub id asks for --model.
    """
    from colasearch.errors import ModelNotFoundError

    name = _model_name(schedule, model)
    try:
        return load(name, device, dtype)
    except ModelNotFoundError:
        if model is not None:
            raise
        raise ModelNotFoundError(f"the schedule names its model {name!r}, which is no alias, folder or cached hub id "
                                 f"here (a local model file is named by its stem): pass --model PATH") from None


@app.command()
def export(
    schedule: ScheduleArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (checkpoint) or file (mergekit, json).")],
    export_format: Annotated[ExportFormat, typer.Option("--format", "-f", help="What to write.")] = ExportFormat.checkpoint,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help=(
        "Hugging Face id, local folder, .gguf file or 'smollm2-135m'. mergekit: the model the config names; a GGUF "
        "model is named by the folder of its dequantized weights that colasearch evaluated (colasearch cache list)."))] = None,
    dtype: Annotated[Optional[str], typer.Option(help="checkpoint: the weights' dtype (float32, bfloat16, float16; default float32); mergekit: the dtype line of the config.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Export even if the model's fingerprint differs (mergekit: a --model folder's).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty output folder.")] = False,
    device: DeviceOption = "cpu",
) -> None:
    """Write the schedule as a checkpoint any runtime loads, a mergekit passthrough config, or JSON."""
    from colasearch.export import require_layer_level, write_json, write_mergekit
    from colasearch.validate import load_valid

    from colasearch.cli.prechecks import check_output_file, check_output_folder

    chosen = load_valid(schedule)
    if export_format is ExportFormat.checkpoint:
        from colasearch.export.checkpoint import check_checkpoint_target

        check_output_folder(out, "--out")
        check_checkpoint_target(out, overwrite)
    else:
        check_output_file(out, "--out")
    if export_format is ExportFormat.json:
        with _writing(out):
            written = write_json(chosen, out)
    elif export_format is ExportFormat.mergekit:
        from colasearch.export import mergekit_source

        source = mergekit_source(chosen, _model_name(chosen, model), force=force)
        if source.caveat:  # the config runs, but on other weights than the ones scored: say so where it is made
            sys.stderr.write(f"colasearch: warning: {source.caveat}\n")
        with _writing(out):
            written = write_mergekit(chosen, out, dtype=dtype, source=source)
    else:
        require_layer_level(chosen, "a checkpoint")  # before the model loads
        placement(device, dtype or "float32")
        from transformers.utils import logging as hf_logging

        from colasearch.export import export_checkpoint

        language_model, tokenizer = _load_named(chosen, model, device, dtype or "float32")
        hf_logging.disable_progress_bar()  # stdout and stderr carry only the result and errors
        with _writing(out):
            written = export_checkpoint(language_model, chosen, out, tokenizer=tokenizer, force=force, overwrite=overwrite)
    named = f" (layers of {source.model})" if export_format is ExportFormat.mergekit else ""
    typer.echo(f"wrote {export_format.value} export of {len(chosen.layers)} entries to {written}{named}")


@app.command()
def validate(schedule: ScheduleArgument, model: OptionalModel = None) -> None:
    """Check a schedule file (syntax, version, schema; fingerprint and layer range given --model); every problem, one line each."""
    from colasearch.validate import fingerprint_of_model_name, validate_schedule_file

    model_fingerprint = fingerprint_of_model_name(model) if model else None
    problems = validate_schedule_file(schedule, model_fingerprint=model_fingerprint)
    if problems:
        sys.stderr.write("".join(f"{schedule}: {problem}\n" for problem in problems))
        raise SystemExit(2)
    against = f", fits {model}" if model else ""
    typer.echo(f"{schedule}: valid{against}")


@app.command()
def show(
    schedule: ScheduleArgument,
    png: Annotated[Optional[Path], typer.Option("--png", help="Also draw the schedule next to the full model into this PNG.")] = None,
    model: Annotated[
        Optional[str], typer.Option("--model", "-m", help="Compute the ideal speedup on this model when the file has none.")
    ] = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """The chain (layers run, skipped, repeated, sub-blocks) and the metrics of a schedule.

    Given a study journal instead (``runs/X.journal``), ``--png`` draws its Pareto front of quality
    against ideal speedup, with the chosen schedule (``runs/X.yaml``) and its baseline marked.
    """
    if schedule.suffix == ".journal":
        from colasearch.study_plot import draw_study

        if png is None:
            from colasearch.errors import ColasearchError

            raise ColasearchError("showing a study draws its Pareto front: give --png FILE")
        from colasearch.cli.prechecks import check_output_file

        check_output_file(png, "--png")
        with _writing(png):
            drawn = draw_study(schedule, png)
        typer.echo(f"drew {drawn}")
        return
    from colasearch.cli.prechecks import check_output_file
    from colasearch.show import draw_png, render
    from colasearch.validate import load_valid

    chosen = load_valid(schedule)
    check_output_file(png, "--png")
    ideal = None
    num_layers = None
    if model:
        from colasearch.cost import CostModel
        from colasearch.loading import load_model

        language_model, _ = load_model(model)
        chosen.check_fits(language_model)
        costs = CostModel.from_model(language_model)
        ideal, num_layers = costs.ideal_speedup(chosen), costs.num_layers
    if json_output:
        from colasearch.cli.output import print_json
        from colasearch.show import summarize

        summary = summarize(chosen, num_layers)
        print_json({**chosen.to_dict(), "key": chosen.key, "ideal_speedup": ideal,
                    "summary": {"num_layers": summary.num_layers, "skipped": summary.skipped,
                                "repeated": summary.repeated, "sub_blocks": summary.sub_blocks,
                                "reordered": summary.reordered}})
    else:
        render(chosen, num_layers=num_layers, ideal_speedup=ideal, title=schedule.name)
    if png is not None:
        with _writing(png):
            drawn = draw_png(chosen, png, num_layers=num_layers, title=schedule.name)
        typer.echo(f"drew {drawn}")
