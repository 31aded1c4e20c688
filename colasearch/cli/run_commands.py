"""``colasearch run`` (search for a schedule and write it) and ``colasearch compare`` (searchers side by side)."""

from __future__ import annotations

import contextlib
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
ObjectiveOption = Annotated[str, typer.Option("--objective", help="Objective plug-in (constrained, scalarized, pareto, speculative: the best self-speculative draft).")]
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


@contextlib.contextmanager
def _phase(console, description: str):
    """A spinner while a phase of seconds to minutes runs; then one line with the time it took."""
    started = time.perf_counter()
    with console.status(f"{description} ..."):
        yield
    _progress_line(console, f"{description}: {time.perf_counter() - started:.0f}s")


def _progress_line(console, text: str) -> None:
    """A line of progress for a person watching: on a terminal only, so that in a pipe or a log a failed run
    still leaves exactly one line on stderr, its error."""
    if console.is_terminal:
        console.print(text)


def _finish(context, candidate, measure: bool):
    """Held-out numbers, then the speed: callers stop Ray before, so nothing else runs while it is timed."""
    from colasearch.search.session import measure_speed

    if candidate.heldout is None:
        candidate.heldout = context.evaluator.evaluate(candidate.schedule, split="heldout")
    if measure and not candidate.timed:
        candidate.speed = measure_speed(context.model, candidate.schedule)
        candidate.timed = True
    return candidate


def _speed_cell(candidate) -> str:
    """The measured speedup with its interval, or why it is not shown (flagged by the protocol)."""
    speed = candidate.speed
    if speed is None:
        return _fmt(candidate.measured_speedup, 3, "x")
    low, high = speed.interval
    return f"{speed.speedup:.3f}x [{low:.2f}-{high:.2f}]" if speed.shipped else f"flagged ({speed.estimate:.2f}x?)"


def _report_flags(console, candidates) -> None:
    for candidate in candidates:
        if candidate is not None and candidate.speed is not None and not candidate.speed.shipped:
            console.print(f"measured speedup of {candidate.label} not shipped: {candidate.speed.flag}")


@app.command()
def run(
    model: ModelOption = "smollm2-135m",
    task: TaskOption = None,
    task_aggregate: TaskAggregateOption = "mean",
    searcher: Annotated[str, typer.Option("--searcher", "-s", help="Searcher: evolution (default), mcts, optuna, rl, frontier, unified, greedy, gromov, random or a plug-in.")] = "evolution",
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
    from rich.console import Console
    from rich.table import Table

    from colasearch.search.session import (
        DEFAULT_BUDGET, Candidate, RunContext, check_run_options, default_out, deployable, open_executor, parse_options,
        ray_workers, search_with,
    )
    from colasearch.search.confirmation import unconfirmed_reason
    from colasearch.searchers.base import SearcherError, searcher_class
    from colasearch.tasks import DEFAULT_TASK

    from colasearch.tasks.composite import task_spec

    started = time.perf_counter()  # the summary reports the whole command, model loading included
    budget = DEFAULT_BUDGET if budget is None else budget
    tasks = task or [DEFAULT_TASK]
    task = task_spec(tasks, task_aggregate)
    check_run_options(searcher, budget, target_speedup, objective)
    workers, gpus_per_worker = ray_workers(placement(device, dtype, device_map), workers, gpus_per_worker)
    use_threads(threads)
    baseline_names = [name.strip() for name in baselines.split(",") if name.strip()]
    for name in baseline_names:
        searcher_class(name)
    from colasearch.cli.prechecks import (
        check_at_least, check_measured_workers, check_run_outputs, check_searcher_options,
    )

    options = check_searcher_options(searcher, parse_options(option))
    check_at_least(parallel, 1, "--parallel")
    check_at_least(confirm_size, 0, "--confirm-size")
    space_options = {"sub_blocks": sub_blocks, "repeats": repeats}
    console = stderr_console()
    from colasearch.errors import ColasearchError
    from colasearch.schedule import Schedule

    init_schedules = [Schedule.load(path) for path in init or []]  # a malformed file fails before the model loads

    out = out or default_out(model, "+".join(tasks), searcher, target_speedup)
    storage = storage or str(out.with_suffix(".journal"))
    check_run_outputs(out, storage, resume, overwrite)
    # The evaluator's result cache sits next to a journal, so a resumed run recomputes not even the table's rows.
    cache_path = None if "://" in storage else Path(storage).with_suffix(".results.jsonl")
    speculative = objective == "speculative"
    if speculative and (speculative_prompts < 1 or not 1 <= draft_tokens <= 32):
        raise SearcherError(f"--speculative-prompts must be >= 1 and --draft-tokens in 1..32, got "
                            f"{speculative_prompts} and {draft_tokens}")
    evaluator_options = {"speculative_prompts": speculative_prompts, "draft_tokens": draft_tokens} if speculative else {}
    if prefix_cache_mb is not None:
        evaluator_options["prefix_cache_mb"] = prefix_cache_mb
    if objective == "measured":
        check_measured_workers(workers, gpus_per_worker)
        evaluator_options["measure_speed"] = True  # every candidate is timed where it is scored
    if overwrite:  # only now that every flag is checked: a refused command changes nothing
        from colasearch.evaluator.result_cache import clear_results

        clear_results(cache_path)
    context = RunContext.load(model, task, search_size, heldout_size, split_seed, cache_path=cache_path,
                              confirm_size=confirm_size,
                              search_metric=search_metric, device=device, dtype=dtype, device_map=device_map,
                              **evaluator_options)
    # No spinner here: a first load converts a GGUF file under its own progress bar.
    _progress_line(console, f"loaded {model} and {context.task.name}: {time.perf_counter() - started:.0f}s")
    context.space(target_speedup, **space_options)  # an impossible target fails here, before any evaluation
    for path, schedule in zip(init or [], init_schedules):
        try:
            schedule.check_fits(context.model)
        except ColasearchError as error:
            raise ColasearchError(f"--init {path}: {error}") from None

    window = parallel if parallel is not None else max(1, workers)
    from colasearch.distributed.cluster import ray_running, shutdown_ray

    ray_was_running = ray_running()  # a Python caller's own Ray is theirs to stop
    try:
        with open_executor(context, workers, address, gpus_per_worker, window, threads) as executor:
            outcome, objective_object = search_with(context, searcher, budget, target_speedup, seed, objective,
                                                    storage, resume, options, space_options, progress=not quiet,
                                                    executor=executor, window=window, overwrite=overwrite,
                                                    init=tuple(init_schedules))
    finally:
        # Ray's processes would compete with the held-out scoring and, worse, with the timing.
        if not ray_was_running:
            shutdown_ray()
    if outcome.best is None or outcome.best_value == float("-inf"):
        raise SearcherError(f"{searcher} found no schedule reaching {target_speedup:g}x in {outcome.evaluations} "
                            "evaluations; raise --budget or lower --target-speedup")
    if getattr(outcome.searcher, "oracle", False):
        report = outcome.searcher.oracle_report()
        Console().print(f"[bold]ORACLE (per-sample, analysis only, not deployable)[/bold]: {report}")
        if report["items"] == 0:
            console.print("oracle: the evaluator returned no per-item results (EvalResult.extra['per_item'])")
        console.print(f"oracle mode writes no schedule; the best single schedule was {outcome.best.chain}")
        return

    scoring = f"held-out scoring ({heldout_size} items){' and timing' if measure else ''}"
    with _phase(console, f"full model: {scoring}"):
        full = _finish(context, Candidate("full model", None, context.evaluator.evaluate(None, "search")), measure)
    with _phase(console, f"found schedule: {scoring}"):
        found = _finish(context, Candidate(f"{searcher} (found)", outcome.best, outcome.best_result), measure)
    best_baseline = None
    for name in baseline_names:
        if name == searcher:
            continue
        with _phase(console, f"baseline {name}: search"):
            baseline_outcome, _ = search_with(context, name, 1 if name != "random" else budget, target_speedup,
                                              seed, objective, None, False, {}, space_options)
        if baseline_outcome.best is None:
            continue
        candidate = Candidate(f"{name} (baseline)", baseline_outcome.best, baseline_outcome.best_result)
        if best_baseline is None or objective_object.scalar(candidate.search) > objective_object.scalar(best_baseline.search):
            best_baseline = candidate
    if best_baseline is not None:
        with _phase(console, f"best baseline: {scoring}"):
            _finish(context, best_baseline, measure)

    metric = context.metric
    total_seconds = time.perf_counter() - started
    from colasearch.loading import portable_name

    table = Table(title=f"{portable_name(model)} on {context.task.name}: target {target_speedup:g}x, {outcome.evaluations} candidates "
                        f"for {outcome.full_equivalents:.1f} full-split evaluations of compute ({outcome.stopped_early} "
                        f"stopped early by racing; {outcome.computed} computed, {outcome.reused} read back) in "
                        f"{outcome.seconds:.0f}s of search; {total_seconds:.0f}s in all")
    table.add_column("schedule", no_wrap=True)
    columns = ["layers", f"{metric} held-out", f"{metric} search", "ideal speedup", "measured speedup"]
    if speculative:
        columns += ["acceptance held-out", "spec. speedup held-out"]
    for column in columns:
        table.add_column(column, justify="right")
    rows = []
    for candidate in (full, best_baseline, found):
        if candidate is None:
            continue
        row = {"schedule": candidate.label,
               "layers": "all" if candidate.schedule is None else len(candidate.schedule.layers),
               "heldout": candidate.heldout.quality[metric], "search": candidate.search.quality[metric],
               "ideal_speedup": candidate.search.ideal_speedup, "measured_speedup": candidate.measured_speedup,
               "speed": None if candidate.speed is None else candidate.speed.to_dict()}
        if speculative:
            row.update(acceptance_heldout=candidate.heldout.extra.get("acceptance_rate"),
                       speculative_speedup_heldout=objective_object.values(candidate.heldout)[0])
        rows.append(row)
        cells = [row["schedule"], str(row["layers"]), _fmt(row["heldout"]), _fmt(row["search"]),
                 _fmt(row["ideal_speedup"], 3, "x"), _speed_cell(candidate)]
        if speculative:
            cells += [_fmt(row["acceptance_heldout"], 3), _fmt(row["speculative_speedup_heldout"], 3, "x")]
        table.add_row(*cells)
    if not json_output:
        Console().print(table)
    _report_flags(console, (full, best_baseline, found))
    highest = getattr(outcome, "highest", None)
    confirmations = [check.to_dict() for check in getattr(outcome, "confirmations", [])]
    for check in confirmations:
        console.print(f"confirmation on {outcome.confirm_items} unused items: {check['schedule']} leads the start by "
                      f"{check['lead']:+.4f} ± {check['standard_error']:.4f}"
                      f" ({'holds' if check['holds'] else 'does not hold'})")
    unconfirmed = unconfirmed_reason(getattr(outcome, "start", None), found.schedule, confirmations,
                                     len(context.evaluator.splits.confirm))
    if unconfirmed:
        console.print(f"the choice's lead over the run's start was not confirmed on unused items ({unconfirmed}); "
                      "it rests on the search split's bound alone")
    if highest is not None:
        console.print(f"chose {found.schedule.chain}, not the highest search value ({highest.chain}): its lead over "
                      f"the run's start was within {getattr(outcome, 'choice_z', None) or 1.0:.1f} paired standard "
                      "errors (a lead the luckiest of that many candidates reaches by chance) or did not hold on "
                      "the confirmation items")

    provenance = {"_full": full, "task_spec": task, "storage": storage, "study": outcome.store.name,
                  "evaluations": outcome.evaluations, "search_size": search_size, "heldout_size": heldout_size,
                  "split_seed": split_seed, "searcher_options": options or None,
                  "confirm_size": len(context.evaluator.splits.confirm), "confirmation": confirmations or None,
                  "search_metric": context.objective_metric}
    if best_baseline is not None:
        provenance["baseline"] = {"name": best_baseline.label.split(" ")[0],
                                  "heldout": best_baseline.heldout.quality[metric],
                                  "ideal_speedup": best_baseline.search.ideal_speedup}
    if speculative:
        provenance["speculative"] = {"draft_tokens": draft_tokens, "prompts": speculative_prompts,
                                     "acceptance_heldout": found.heldout.extra.get("acceptance_rate"),
                                     "acceptance_search": found.search.extra.get("acceptance_rate"),
                                     "expected_speedup_heldout": objective_object.values(found.heldout)[0]}
    schedule = deployable(context, found, objective, target_speedup, searcher, budget, seed, provenance)
    try:
        schedule.save(out)
    except ColasearchError as error:  # a full disk: the search is not lost, its study is on disk
        raise ColasearchError(f"{error}; the study {storage} is kept: rerun with --resume to finish") from None
    if json_output:
        print_json({"model": model, "task": context.task.name, "metric": metric, "target_speedup": target_speedup,
                    "evaluations": outcome.evaluations, "computed": outcome.computed, "reused": outcome.reused,
                    "full_split_evaluations": round(outcome.full_equivalents, 2),
                    "stopped_early": outcome.stopped_early, "search_seconds": round(outcome.seconds, 1), "total_seconds": round(total_seconds, 1),
                    "rows": rows, "out": str(out), "chain": found.schedule.chain,
                    "highest_not_chosen": highest.chain if highest is not None else None,
                    "confirmation": confirmations})
    console.print(f"wrote {out}  ({found.schedule.chain})")


def _atomic_write(path: Path, write) -> None:
    from colasearch.files import write_atomically

    write_atomically(path, write)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (speedup up, quality up), sorted by speedup."""
    front = []
    for speedup, quality in sorted(points, key=lambda point: (-point[0], -point[1])):
        if not front or quality > front[-1][1]:
            front.append((speedup, quality))
    return sorted(front)


def plot_pareto(path: Path, records: dict[str, list[tuple[float, float]]], chosen: dict[str, tuple[float, float]],
                target: float, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    everything = []
    for index, (name, points) in enumerate(records.items()):
        color = f"C{index}"
        if points:
            axes.scatter([p[0] for p in points], [p[1] for p in points], s=12, alpha=0.4, color=color, label=f"{name} (search)")
            everything.extend(points)
        if name in chosen:
            axes.scatter([chosen[name][0]], [chosen[name][1]], s=80, marker="*", color=color, edgecolor="black",
                         label=f"{name} (held-out)")
    front = pareto_front(everything)
    if front:
        axes.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", linewidth=1,
                  label="Pareto front (search)")
    axes.axvline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:g}x")
    axes.set_xlabel("ideal speedup")
    axes.set_ylabel(metric)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    _atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    plt.close(figure)


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

    from colasearch.search.session import DEFAULT_BUDGET, Candidate, RunContext, check_run_options, search_with
    from colasearch.tasks import DEFAULT_TASK
    from colasearch.tasks.composite import task_spec

    budget = DEFAULT_BUDGET if budget is None else budget
    task = task_spec(task or [DEFAULT_TASK], task_aggregate)
    names = [name.strip() for name in searchers.split(",") if name.strip()] or \
        ["mcts", "evolution", "optuna", "rl", "frontier", "unified", "greedy", "gromov", "random"]
    for name in names:
        check_run_options(name, budget, target_speedup, objective)
    from colasearch.cli.prechecks import check_at_least, check_output_folder

    check_output_folder(out_dir, "--out-dir")
    check_at_least(confirm_size, 0, "--confirm-size")
    if len(set(names)) != len(names):
        from colasearch.errors import ColasearchError

        raise ColasearchError("--searchers names a searcher twice")
    placement(device, dtype, device_map)
    use_threads(threads)
    cache_option = {} if prefix_cache_mb is None else {"prefix_cache_mb": prefix_cache_mb}
    context = RunContext.load(model, task, search_size, heldout_size, split_seed, search_metric=search_metric,
                              confirm_size=confirm_size,
                              device=device, dtype=dtype, device_map=device_map, **cache_option)
    context.space(target_speedup, sub_blocks=sub_blocks)
    metric = context.metric
    full = _finish(context, Candidate("full", None, context.evaluator.evaluate(None, "search")), False)

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
            candidate = _finish(context, Candidate(name, outcome.best, outcome.best_result), measure)
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

    _atomic_write(out_dir / "compare.csv", write_csv)
    plot_pareto(out_dir / "pareto.png", records, chosen, target_speedup, metric)
    stderr_console().print(f"wrote {out_dir / 'compare.csv'} and {out_dir / 'pareto.png'}")
