"""``colasearch run`` (search for a schedule and write it) and ``colasearch compare`` (searchers side by side)."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from colasearch.cli.app import app
from colasearch.cli.output import JsonOption, QuietOption, print_json
from colasearch.console import stderr_console
from colasearch.cli.options import (
    DeviceMapOption, DeviceOption, DtypeOption, PrefixCacheOption, ThreadsOption, placement, use_threads,
)

ModelOption = Annotated[str, typer.Option("--model", "-m", help="Hugging Face id, local folder, .gguf file or 'smollm2-135m'.")]
TaskOption = Annotated[Optional[list[str]], typer.Option("--task", "-t", help="Task spec, e.g. builtin:capitals or jsonl:PATH (default: a built-in task). Repeat for one schedule across tasks, each SPEC or SPEC@WEIGHT (see --task-aggregate).")]
TaskAggregateOption = Annotated[str, typer.Option("--task-aggregate", help="With several --task: mean (weighted by @WEIGHT) or min (the worst task) of each task's primary metric as a share of the full model's.")]
BudgetOption = Annotated[Optional[int], typer.Option("--budget", "-b", help="Evaluations on the search split (default 100).")]
TargetOption = Annotated[float, typer.Option("--target-speedup", help="Ideal speedup the schedule must reach. With --objective speculative it is the draft's ideal speedup (its cost), not a floor on the speculative speedup, which is maximized.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the searcher (splits use --split-seed).")]
def _names_help(registry, default: str) -> str:
    """A registry's names for a help text, the default first: plug-ins installed here are listed too."""
    return ", ".join([f"{default} (default)"] + [name for name in registry.names() if name != default])


def _searcher_help() -> str:
    from colasearch.run_config import DEFAULT_SEARCHER
    from colasearch.searchers.base import SEARCHERS

    return f"Searcher: {_names_help(SEARCHERS, DEFAULT_SEARCHER)}; more install as colasearch.searchers entry points."


def _objective_help() -> str:
    from colasearch.objectives import OBJECTIVES

    return (f"Objective: {_names_help(OBJECTIVES, 'constrained')} (speculative: the best self-speculative draft); "
            "more install as colasearch.objectives entry points.")


ObjectiveOption = Annotated[str, typer.Option("--objective", help=_objective_help())]
SearchSizeOption = Annotated[int, typer.Option("--search-size", help="Items in the search split.")]
HeldoutSizeOption = Annotated[int, typer.Option("--heldout-size", help="Items in the held-out split.")]
ConfirmSizeOption = Annotated[Optional[int], typer.Option(
    "--confirm-size", help="Items after the held-out ones on which the final choice's lead over its start must "
                           "hold before it ships; each confirmed schedule gets as many as a quarter of the budget "
                           "affords (default: 4 x --search-size; 0: no confirmation).")]
SplitSeedOption = Annotated[int, typer.Option("--split-seed", help="Seed of the search/held-out split.")]
SearchMetricOption = Annotated[str, typer.Option("--search-metric", help="Metric the search maximizes on the search split: primary (the task's, default), smooth (multiple choice: the probability on the right choice, less noisy on small splits), dense (multiple choice: text_kl, the KL to the full model at every token of the items, no labels) or a metric name. Reports always use the primary metric.")]
OptionOption = Annotated[Optional[list[str]], typer.Option("--option", "-o", help="Searcher option KEY=VALUE (repeatable).")]
SubBlocksOption = Annotated[bool, typer.Option("--sub-blocks/--no-sub-blocks", help="Allow skipping attention or MLP sub-blocks alone.")]
RepeatsOption = Annotated[bool, typer.Option("--repeats/--no-repeats", help="Allow running a layer twice.")]
WorkersOption = Annotated[Optional[int], typer.Option("--workers", help="Ray evaluation workers, each with a model replica; 0 runs without Ray (default: one per GPU on a GPU machine, else 1).")]
AddressOption = Annotated[Optional[str], typer.Option("--address", help="Join a Ray cluster ('auto' or ray://host:port) instead of starting a local one.")]
GpusOption = Annotated[Optional[float], typer.Option("--gpus-per-worker", help="GPUs each Ray worker reserves and loads its replica on (0.5: two replicas per GPU; default: 1 on a GPU machine, else 0).")]
ParallelOption = Annotated[Optional[int], typer.Option("--parallel", help="Proposals outstanding at once (default: one per worker). For a fixed --parallel the result does not depend on --workers.")]
MeasureOption = Annotated[bool, typer.Option("--measure/--no-measure", help="Time decode speed of the results.")]


def _fmt(value, digits: int = 4, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _speed_cell(candidate) -> str:
    """The measured speedup with its interval, or why it is not shown (flagged by the protocol)."""
    speed = candidate.speed
    if speed is None:
        return _fmt(candidate.measured_speedup, 3, "x")
    return f"{speed.cell()} [{speed.interval_text(2)}]" if speed.shipped else speed.cell(2)


@app.command()
def run(
    model: ModelOption = "smollm2-135m",
    task: TaskOption = None,
    task_aggregate: TaskAggregateOption = "mean",
    searcher: Annotated[str, typer.Option("--searcher", "-s", help=_searcher_help())] = "evolution",
    budget: BudgetOption = None,
    target_speedup: TargetOption = 1.25,
    seed: SeedOption = 0,
    out: Annotated[Optional[Path], typer.Option("--out", help="Schedule YAML to write (default runs/<model>_<task>_<searcher>_x<target>.yaml).")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Optuna storage: a journal file (default: next to --out) or an RDB URL.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a killed run from its storage; nothing is recomputed.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out and start its run afresh.")] = False,
    objective: ObjectiveOption = "constrained",
    baselines: Annotated[str, typer.Option("--baselines", help="Comma-separated baselines to compare against ('' for none).")] = "unified",
    option: OptionOption = None,
    sub_blocks: SubBlocksOption = False,
    repeats: RepeatsOption = False,
    search_size: SearchSizeOption = 64,
    heldout_size: HeldoutSizeOption = 200,
    confirm_size: ConfirmSizeOption = None,
    split_seed: SplitSeedOption = 0,
    search_metric: SearchMetricOption = "primary",
    measure: MeasureOption = True,
    workers: WorkersOption = None,
    address: AddressOption = None,
    gpus_per_worker: GpusOption = None,
    parallel: ParallelOption = None,
    speculative_prompts: Annotated[int, typer.Option("--speculative-prompts", help="With --objective speculative: prompts per split on which each draft's acceptance is measured.")] = 8,
    draft_tokens: Annotated[int, typer.Option("--draft-tokens", help="With --objective speculative: tokens drafted per verify step.")] = 4,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
    prefix_cache_mb: PrefixCacheOption = None,
    threads: ThreadsOption = None,
    init: Annotated[Optional[list[Path]], typer.Option("--init", help="Schedule YAML to start the search from (repeatable): proposed first, checked against the model.")] = None,
) -> None:
    """Search for the best schedule at a speed target and write it with its held-out numbers.

    With ``--objective speculative`` the schedule is a self-speculative draft: every candidate's
    acceptance against the full model is measured by real draft/verify decoding on the split's prompts,
    and the draft with the best expected speedup (acceptance and draft cost together) is chosen.
    """
    from colasearch.pipeline import find_schedule
    from colasearch.run_config import RunConfig, parse_options

    given = {}  # flags left out take the config's defaults
    if task:
        given["tasks"] = tuple(task)
    if budget is not None:
        given["budget"] = budget
    config = RunConfig(
        model=model, task_aggregate=task_aggregate, searcher=searcher, target_speedup=target_speedup, seed=seed,
        out=out, storage=storage, resume=resume, overwrite=overwrite, objective=objective, baselines=baselines,
        searcher_options=parse_options(option), sub_blocks=sub_blocks, repeats=repeats, search_size=search_size,
        heldout_size=heldout_size, confirm_size=confirm_size, split_seed=split_seed, search_metric=search_metric,
        measure=measure, workers=workers, address=address, gpus_per_worker=gpus_per_worker, parallel=parallel,
        speculative_prompts=speculative_prompts, draft_tokens=draft_tokens, device=device, dtype=dtype,
        device_map=device_map, prefix_cache_mb=prefix_cache_mb, threads=threads, init=tuple(init or ()), **given)
    result = find_schedule(config, progress=not quiet)
    console = stderr_console()
    if result.oracle_report is not None:
        from rich.console import Console

        Console().print(f"[bold]ORACLE (per-sample, analysis only, not deployable)[/bold]: {result.oracle_report}")
    elif not json_output:
        _print_run_table(result)
    for note in result.notes:
        console.print(note)
    if result.schedule is None:
        return
    if json_output:
        print_json(result.summary())
    console.print(f"wrote {result.out}  ({result.schedule.chain})")


def _print_run_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    from colasearch.loading import portable_name

    config, outcome, metric = result.config, result.outcome, result.metric
    table = Table(title=f"{portable_name(config.model)} on {result.task}: target {config.target_speedup:g}x, "
                        f"{outcome.evaluations} candidates for {outcome.full_equivalents:.1f} full-split evaluations "
                        f"of compute ({outcome.stopped_early} stopped early by racing; {outcome.computed} computed, "
                        f"{outcome.reused} read back) in {outcome.seconds:.0f}s of search; "
                        f"{result.total_seconds:.0f}s in all")
    table.add_column("schedule", no_wrap=True)
    columns = ["layers", f"{metric} held-out", f"{metric} search", "ideal speedup", "measured speedup"]
    if config.speculative:
        columns += ["acceptance held-out", "spec. speedup held-out"]
    for column in columns:
        table.add_column(column, justify="right")
    for row, candidate in zip(result.rows, result.candidates):
        cells = [row["schedule"], str(row["layers"]), _fmt(row["heldout"]), _fmt(row["search"]),
                 _fmt(row["ideal_speedup"], 3, "x"), _speed_cell(candidate)]
        if config.speculative:
            cells += [_fmt(row["acceptance_heldout"], 3), _fmt(row["speculative_speedup_heldout"], 3, "x")]
        table.add_row(*cells)
    Console().print(table)


@app.command()
def compare(
    model: ModelOption = "smollm2-135m",
    task: TaskOption = None,
    task_aggregate: TaskAggregateOption = "mean",
    searchers: Annotated[str, typer.Option("--searchers", help="Comma-separated searchers (default: all built-in).")] = "",
    budget: BudgetOption = None,
    target_speedup: TargetOption = 1.25,
    seed: SeedOption = 0,
    objective: ObjectiveOption = "constrained",
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for compare.csv and pareto.png.")] = Path("runs/compare"),
    sub_blocks: SubBlocksOption = False,
    search_size: SearchSizeOption = 64,
    heldout_size: HeldoutSizeOption = 200,
    confirm_size: ConfirmSizeOption = None,
    split_seed: SplitSeedOption = 0,
    search_metric: SearchMetricOption = "primary",
    measure: MeasureOption = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
    prefix_cache_mb: PrefixCacheOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Several searchers at the same budget and target: held-out quality, evaluations, wall time, Pareto PNG."""
    from rich.console import Console
    from rich.table import Table

    from colasearch.pipeline import load_context, score
    from colasearch.run_config import RunConfig
    from colasearch.engine.session import Candidate, search_with

    from colasearch.searchers.base import SEARCHERS

    names = [name.strip() for name in searchers.split(",") if name.strip()] or SEARCHERS.builtin_names()
    given = {"tasks": tuple(task)} if task else {}
    if budget is not None:
        given["budget"] = budget
    # One run's settings per searcher, each checked before the model loads; they differ only in the searcher.
    configs = [RunConfig(model=model, task_aggregate=task_aggregate, searcher=name, target_speedup=target_speedup,
                         seed=seed, objective=objective, sub_blocks=sub_blocks, search_size=search_size,
                         heldout_size=heldout_size, confirm_size=confirm_size, split_seed=split_seed,
                         search_metric=search_metric, measure=measure, baselines=(), device=device, dtype=dtype,
                         device_map=device_map, prefix_cache_mb=prefix_cache_mb, threads=threads, **given)
               for name in names]
    from colasearch.cli.prechecks import check_output_folder

    check_output_folder(out_dir, "--out-dir")
    if len(set(names)) != len(names):
        from colasearch.errors import ColasearchError

        raise ColasearchError("--searchers names a searcher twice")
    placement(device, dtype, device_map)
    use_threads(threads)
    context = load_context(configs[0])
    context.space(target_speedup, sub_blocks=sub_blocks)
    metric, budget = context.metric, configs[0].budget
    full = score(context, Candidate("full", None, context.evaluator.evaluate(None, "search")), False)

    rows, records, chosen = [], {}, {}
    for name in names:
        evaluator = context.fresh_evaluator()
        started = time.perf_counter()
        outcome, objective_object = search_with(context, name, budget, target_speedup, seed, objective, None, False,
                                                {}, {"sub_blocks": sub_blocks}, progress=not quiet, evaluator=evaluator)
        seconds = time.perf_counter() - started
        records[name] = [(result.ideal_speedup, result.quality[metric]) for _, result in outcome.records]
        feasible = outcome.best is not None and outcome.best_value > float("-inf")
        row = {"searcher": name, "evaluations": outcome.evaluations, "wall_s": round(seconds, 1),
               "heldout": None, "search": None, "ideal_speedup": None, "measured_speedup": None, "chain": ""}
        if feasible:
            candidate = score(context, Candidate(name, outcome.best, outcome.best_result), measure)
            row.update(heldout=candidate.heldout.quality[metric], search=candidate.search.quality[metric],
                       ideal_speedup=candidate.search.ideal_speedup, measured_speedup=candidate.measured_speedup,
                       chain=candidate.schedule.chain)
            chosen[name] = (candidate.search.ideal_speedup, candidate.heldout.quality[metric])
        rows.append(row)

    from colasearch.loading import portable_name

    table = Table(title=f"{portable_name(model)} on {context.task.name}: target {target_speedup:g}x, budget {budget}; full model "
                        f"{metric} held-out {full.heldout.quality[metric]:.4f}")
    table.add_column("searcher", no_wrap=True)
    for column in (f"{metric} held-out", f"{metric} search", "ideal speedup", "measured", "evaluations", "wall s"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["searcher"], _fmt(row["heldout"]), _fmt(row["search"]), _fmt(row["ideal_speedup"], 3, "x"),
                      _fmt(row["measured_speedup"], 3, "x"), str(row["evaluations"]), f"{row['wall_s']:.1f}")
    if json_output:
        print_json({"model": model, "task": context.task.name, "metric": metric, "target_speedup": target_speedup,
                    "budget": budget, "full_heldout": full.heldout.quality[metric], "rows": rows})
    else:
        Console().print(table)

    def write_csv(tmp):
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            writer.writerow({"searcher": "full model", "evaluations": 0, "wall_s": 0,
                             "heldout": full.heldout.quality[metric], "search": full.search.quality[metric],
                             "ideal_speedup": 1.0, "measured_speedup": None, "chain": "all"})

    from colasearch.files import write_atomically
    from colasearch.study_plot import plot_pareto

    write_atomically(out_dir / "compare.csv", write_csv)
    plot_pareto(out_dir / "pareto.png", records, chosen, target_speedup, metric)
    stderr_console().print(f"wrote {out_dir / 'compare.csv'} and {out_dir / 'pareto.png'}")
