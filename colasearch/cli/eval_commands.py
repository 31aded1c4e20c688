"""``colasearch eval``: quality on both splits for the full model and a schedule, speedup and cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from colasearch.cli.app import app
from colasearch.cli.output import JsonOption, QuietOption
from colasearch.cli.options import (
    DeviceMapOption, DeviceOption, DtypeOption, PrefixCacheOption, ThreadsOption, load, placement, use_threads,
)
from colasearch.cli.runtime_commands import ForceOption, ModelOption, ScheduleOption, load_schedule_for

TaskOption = Annotated[Optional[list[str]], typer.Option(
    "--task", "-t", help="builtin:NAME, jsonl:PATH, text:PATH, fidelity:PATH or lm-eval:NAME (default: the built-in default). Repeat for a composite task, each SPEC or SPEC@WEIGHT.")]
TaskAggregateOption = Annotated[str, typer.Option(
    "--task-aggregate", help="With several --task: mean (weighted) or min of each task's primary metric as a share of the full model's.")]


def _task_options(join: str | None, chat: bool, max_new_tokens: int | None, lm_eval_include: Path | None = None) -> dict:
    options: dict = {}
    if lm_eval_include is not None:
        options["include_path"] = str(lm_eval_include)
    if join is not None:
        options["join"] = join.encode().decode("unicode_escape")
    if chat:
        options["chat"] = True
    if max_new_tokens is not None:
        options["max_new_tokens"] = max_new_tokens
    return options


def speed_fields(speed) -> dict:
    """The figure only when the protocol ships it; the whole measurement (interval, bound, flag) beside it."""
    return {"measured_speedup": None if speed is None else speed.speedup,
            "speed": None if speed is None else speed.to_dict()}


def evaluation_report(evaluator, schedule) -> dict:
    """The ``--json`` object: quality per split for the full model (and the schedule), speedups and cost."""
    from colasearch.tasks import SPLITS

    def both(variant):
        return {split: evaluator.evaluate(variant, split).quality for split in SPLITS}

    report = {"task": evaluator.task.name, "primary_metric": evaluator.task.primary_metric,
              "split_sizes": {split: len(evaluator.split_items(split)) for split in SPLITS},
              "full": both(None)}
    if schedule is not None:
        report["schedule"] = both(schedule)
    report["ideal_speedup"] = evaluator.cost_model.ideal_speedup(schedule)
    report.update(speed_fields(None))
    report["cost"] = evaluator.cost_model.summary(schedule)
    report["full_cost"] = evaluator.cost_model.summary(None)
    return report


def _print_report(report: dict, model_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    sizes = report["split_sizes"]
    table = Table(title=f"{report['task']} on {model_name} (search {sizes['search']} items, held-out {sizes['heldout']})")
    table.add_column("metric")
    table.add_column("full held-out", justify="right")
    table.add_column("full search", justify="right")
    if "schedule" in report:
        table.add_column("schedule held-out", justify="right")
        table.add_column("schedule search", justify="right")
        table.add_column("gap (search - held-out)", justify="right")
    for metric in report["full"]["heldout"]:
        marker = " *" if metric == report["primary_metric"] else ""
        row = [metric + marker, f"{report['full']['heldout'][metric]:.4f}", f"{report['full']['search'][metric]:.4f}"]
        if "schedule" in report:
            held, search = report["schedule"]["heldout"][metric], report["schedule"]["search"][metric]
            row += [f"{held:.4f}", f"{search:.4f}", f"{search - held:+.4f}"]
        table.add_row(*row)
    console = Console()
    console.print(table)
    speed = report["speed"]
    if speed is None:
        measured_text = "not measured"
    elif speed["speedup"] is None:
        measured_text = f"measured figure flagged: {speed['flag']}"
    else:
        low, high = speed["interval"]
        measured_text = (f"{speed['speedup']:.3f}x measured [{low:.3f}, {high:.3f}] over {speed['pairs']} pairs "
                         f"(layer-count bound {speed['bound']:.3f}x)")
    cost, full = report["cost"], report["full_cost"]
    console.print(f"speedup: {report['ideal_speedup']:.3f}x ideal, {measured_text}")
    console.print(f"cost per token: {cost['flops_per_token'] / 1e6:.1f} MFLOP (full {full['flops_per_token'] / 1e6:.1f}), "
                  f"KV cache {cost['kv_bytes_per_token'] / 1024:.1f} KiB (full {full['kv_bytes_per_token'] / 1024:.1f})")


@app.command("eval")
def eval_command(
    model: ModelOption = "smollm2-135m",
    task: TaskOption = None,
    task_aggregate: TaskAggregateOption = "mean",
    schedule: ScheduleOption = None,
    search_size: Annotated[int, typer.Option(help="Items in the search split.")] = 64,
    heldout_size: Annotated[int, typer.Option(help="Items in the held-out split.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    measure: Annotated[bool, typer.Option("--measure/--no-measure", help="Time the schedule against the full model.")] = True,
    cache: Annotated[Optional[Path], typer.Option(help="Result cache (JSONL), reused across runs.")] = None,
    join: Annotated[Optional[str], typer.Option(help="Multiple choice: text between context and choice (escapes allowed).")] = None,
    chat: Annotated[bool, typer.Option(help="Generation: wrap prompts in the model's chat template.")] = False,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="Generation: tokens to decode.")] = None,
    lm_eval_include: Annotated[Optional[Path], typer.Option(help="lm-eval: a folder of extra task YAMLs (e.g. over local JSON).")] = None,
    json_output: JsonOption = False,
    force: ForceOption = False,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
    prefix_cache_mb: PrefixCacheOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Quality on both splits (held-out first), ideal and measured speedup, and cost."""
    from colasearch.schedule import Schedule
    from colasearch.tasks import DEFAULT_TASK, load_task

    from colasearch.cli.prechecks import check_at_least, check_output_file

    # Bad files, flags and devices fail before the model loads.
    check_output_file(cache, "--cache")
    check_at_least(max_new_tokens, 1, "--max-new-tokens")
    placement(device, dtype, device_map)
    use_threads(threads)
    if schedule is not None:
        Schedule.load(schedule)
    chosen_task = load_task(task or [DEFAULT_TASK], aggregate=task_aggregate,
                            **_task_options(join, chat, max_new_tokens, lm_eval_include))

    from colasearch.evaluator import Evaluator
    from colasearch.evaluator.config import EvaluatorConfig
    from colasearch.engine.session import measure_speed

    language_model, tokenizer = load(model, device, dtype, device_map)
    chosen = load_schedule_for(language_model, schedule, force)
    config = EvaluatorConfig(search_size=search_size, heldout_size=heldout_size, seed=seed, force=force,
                             prefix_cache_mb=prefix_cache_mb)
    evaluator = Evaluator(language_model, tokenizer, chosen_task, config, cache_path=cache)
    report = evaluation_report(evaluator, chosen)
    if measure:  # timed last, once the quality work is done, by the same protocol as run's
        report.update(speed_fields(measure_speed(language_model, chosen)))
    if json_output:
        typer.echo(json.dumps(report))
    else:
        _print_report(report, model)
