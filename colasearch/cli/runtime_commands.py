"""Commands that run a schedule: generate and bench."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from colasearch.cli.app import app
from colasearch.cli.output import JsonOption, QuietOption, print_json
from colasearch.cli.options import DeviceMapOption, DeviceOption, DtypeOption, load, placement

ModelOption = Annotated[str, typer.Option("--model", "-m", help="Hugging Face id, local folder, .gguf file or 'smollm2-135m'.")]
ScheduleOption = Annotated[Optional[Path], typer.Option("--schedule", "-s", help="Schedule YAML to apply.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Apply a schedule even if its model fingerprint differs.")]


def load_schedule_for(model, schedule_path: Path | None, force: bool):
    """Load a schedule and check it against the model before any work starts."""
    from colasearch.schedule import Schedule

    if schedule_path is None:
        return None
    schedule = Schedule.load(schedule_path)
    schedule.check_fits(model, force=force)
    return schedule


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="Prompt text.")],
    model: ModelOption = "smollm2-135m",
    schedule: ScheduleOption = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 32,
    chat: Annotated[bool, typer.Option(help="Wrap the prompt in the model's chat template.")] = False,
    force: ForceOption = False,
    speculative: Annotated[bool, typer.Option(
        help="Lossless: the schedule drafts, the full model verifies; text identical to the full model's.")] = False,
    draft_tokens: Annotated[str, typer.Option(help="Tokens drafted per round with --speculative: an integer or 'adaptive'.")] = "4",
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
) -> None:
    """Greedy text from the model with the schedule applied; only the generated text goes to stdout."""
    from colasearch.cli.prechecks import check_at_least
    from colasearch.errors import ColasearchError
    from colasearch.schedule import Schedule  # noqa: F401  (fail fast on a bad file before loading)

    if not prompt.strip():
        raise ColasearchError("the prompt is empty; give the text to continue")
    check_at_least(max_new_tokens, 1, "--max-new-tokens")
    if schedule is not None:
        Schedule.load(schedule)
    if speculative:
        _check_speculative_flags(schedule, draft_tokens)
    placement(device, dtype, device_map)
    from colasearch.runtime import greedy_generate, scheduled

    language_model, tokenizer = load(model, device, dtype, device_map)
    chosen = load_schedule_for(language_model, schedule, force)
    if chat and tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    else:
        text = prompt
    from colasearch.devices import model_device

    encoded = tokenizer(text, return_tensors="pt").to(model_device(language_model))
    if encoded.input_ids.shape[1] == 0:
        # A tokenizer may drop every character it has no token for (and add no BOS): nothing to continue.
        raise ColasearchError(f"the prompt {prompt[:40]!r} is no tokens for this model's tokenizer; give text it can encode")
    if speculative:
        output = _speculative_output(language_model, chosen, encoded, max_new_tokens, draft_tokens, force)
    else:
        with scheduled(language_model, chosen, force=force):
            output = greedy_generate(language_model, encoded.input_ids, encoded.attention_mask, max_new_tokens)
    typer.echo(tokenizer.decode(output[0, encoded.input_ids.shape[1]:], skip_special_tokens=True))


def _check_speculative_flags(schedule_path: Path | None, draft_tokens: str) -> None:
    """Refuse bad --speculative flags before the model is loaded."""
    from colasearch.errors import ColasearchError
    from colasearch.speculative.decoding import draft_length_policy

    if schedule_path is None:
        raise ColasearchError("--speculative needs --schedule: the schedule is the draft model")
    draft_length_policy(draft_tokens)


def _speculative_output(language_model, draft, encoded, max_new_tokens: int, draft_tokens: str, force: bool):
    """Run the schedule as the draft of self-speculative decoding; its statistics go to stderr."""
    from colasearch.speculative import speculative_generate

    output, stats = speculative_generate(language_model, draft, encoded.input_ids, encoded.attention_mask,
                                         max_new_tokens=max_new_tokens, draft_tokens=draft_tokens, force=force)
    typer.echo(f"speculative: acceptance rate {stats.acceptance_rate:.3f}, {stats.accepted}/{stats.drafted} drafts "
               f"accepted, {stats.new_tokens} tokens in {stats.full_forward_calls} full forwards", err=True)
    return output


@app.command()
def bench(
    schedule: Annotated[Path, typer.Option("--schedule", "-s", help="Schedule YAML to time.")],
    model: ModelOption = "smollm2-135m",
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8",
    new_tokens: Annotated[int, typer.Option(help="Decode steps per timed run.")] = 64,
    pairs: Annotated[int, typer.Option(help="ABBA-balanced pairs of timed runs (full, schedule) per batch size; even.")] = 12,
    force: ForceOption = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
) -> None:
    """Decode speed of the schedule against the full model, by the same protocol as run and eval
    (colasearch.speed): a figure above the layer-count bound or with a wide interval is flagged."""
    from rich.console import Console
    from rich.table import Table

    from colasearch.benchmark import device_name, measure_speedup
    from colasearch.cost import CostModel
    from colasearch.errors import ColasearchError
    from colasearch.schedule import Schedule
    from colasearch.speed import SpeedProtocol

    from colasearch.cli.prechecks import check_at_least

    Schedule.load(schedule)
    placement(device, dtype, device_map)
    try:
        sizes = tuple(int(size) for size in batch_sizes.split(","))
    except ValueError:
        raise ColasearchError(f"--batch-sizes must be integers separated by commas, got {batch_sizes[:60]!r}") from None
    if any(size < 1 for size in sizes):
        raise ColasearchError(f"--batch-sizes must all be at least 1, got {batch_sizes[:60]!r}")
    check_at_least(new_tokens, 1, "--new-tokens")
    check_at_least(pairs, 2, "--pairs")
    if pairs % 2:
        raise ColasearchError(f"--pairs must be even (half the pairs run the schedule first), got {pairs}")
    language_model, _ = load(model, device, dtype, device_map)
    chosen = load_schedule_for(language_model, schedule, force)
    rows = [measure_speedup(language_model, chosen, SpeedProtocol(pairs=pairs, tokens=new_tokens, batch_size=size),
                            force=force) for size in sizes]
    ideal = CostModel.from_model(language_model).ideal_speedup(chosen)
    if json_output:
        print_json({"schedule": str(schedule), "model": model, "device": device_name(language_model),
                    "ideal_speedup": ideal, "rows": [row.to_dict() for row in rows]})
        return
    table = Table(title=f"{schedule.name} on {model} ({device_name(language_model)}), {pairs} ABBA pairs of "
                        f"{new_tokens} tokens")
    for column in ("batch", "full tok/s", "schedule tok/s", "measured speedup", "95% interval", "ideal",
                   "layer bound"):
        table.add_column(column, justify="right")
    for row in rows:
        measured = row.cell()
        table.add_row(str(row.batch_size), f"{row.batch_size / row.full_seconds_per_token:.1f}",
                      f"{row.batch_size / row.schedule_seconds_per_token:.1f}", measured,
                      row.interval_text(), f"{ideal:.3f}x", f"{row.bound:.3f}x")
    Console().print(table)
    for row in rows:
        if not row.shipped:
            Console(stderr=True).print(f"batch {row.batch_size}: {row.flag}")
