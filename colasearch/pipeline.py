"""One search run as a library call: a :class:`~colasearch.run_config.RunConfig` in, a :class:`RunResult` out.

:func:`find_schedule` does all of ``colasearch run``: it loads the model and task, searches (on Ray workers
when asked), scores the choice, the full model and the best baseline on the held-out split, times them,
and writes the schedule with its numbers and provenance. ``colasearch run`` builds the config from its flags
and prints the result; a sweep builds one per cell and calls this inside a Ray task; ``compare`` uses the
pieces (:func:`load_context`, :func:`score`) per searcher.

    from colasearch import RunConfig, find_schedule

    result = find_schedule(RunConfig(model="smollm2-135m", searcher="random", budget=20))
    print(result.schedule.chain, result.rows)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from colasearch.errors import ColasearchError
from colasearch.progress import RunLog
from colasearch.run_config import RunConfig


@dataclass
class RunResult:
    """What a run found and what it printed. ``schedule`` is what was written to ``out`` (``None`` for an
    oracle searcher, which writes none); ``rows`` are the table's rows (full model, best baseline, choice) as
    data; ``candidates`` the same with their measurements; ``outcome`` the search's record (its study is
    ``outcome.store``); ``notes`` the lines the CLI prints on stderr after the table."""

    config: RunConfig
    schedule: object | None
    out: Path | None
    task: str
    metric: str
    outcome: object
    rows: list[dict] = field(default_factory=list)
    candidates: list = field(default_factory=list)
    confirmations: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    total_seconds: float = 0.0
    oracle_report: dict | None = None

    @property
    def highest_not_chosen(self):
        """The schedule with the highest search value where the choice was another (its lead did not hold)."""
        return self.outcome.highest

    def summary(self) -> dict:
        """The run as one JSON-ready mapping (``colasearch run --json``)."""
        outcome, highest = self.outcome, self.highest_not_chosen
        return {"model": self.config.model, "task": self.task, "metric": self.metric,
                "target_speedup": self.config.target_speedup, "evaluations": outcome.evaluations,
                "computed": outcome.computed, "reused": outcome.reused,
                "full_split_evaluations": round(outcome.full_equivalents, 2),
                "stopped_early": outcome.stopped_early, "search_seconds": round(outcome.seconds, 1),
                "total_seconds": round(self.total_seconds, 1), "rows": self.rows, "out": str(self.out),
                "chain": self.schedule.chain if self.schedule is not None else None,
                "highest_not_chosen": highest.chain if highest is not None else None,
                "confirmation": self.confirmations}


@dataclass
class _Plan:
    """The config resolved against this machine before the model loads."""

    workers: int
    gpus_per_worker: float
    window: int
    out: Path
    storage: str
    init: tuple


def find_schedule(config: RunConfig, *, progress: bool = True, label: str = "") -> RunResult:
    """Search for the best schedule at ``config.target_speedup`` and write it to ``config.out`` (default
    ``runs/<model>_<task>_<searcher>_x<target>.yaml``) with its held-out numbers.

    Bad input raises :class:`~colasearch.errors.ColasearchError` before the model loads where it can. A Ray
    this call starts is stopped before the held-out scoring and the timing (and on every error); a Ray the
    caller started is left running. ``progress``: lines on stderr for a person watching (``label`` before
    each, e.g. a sweep's cell)."""
    started = time.perf_counter()  # the summary reports the whole run, model loading included
    log = RunLog(enabled=progress, label=label, started=started)
    try:
        return _find_schedule(config, log, started)
    finally:
        log.close()


def _find_schedule(config: RunConfig, log: RunLog, started: float) -> RunResult:
    from colasearch.engine import session

    plan = _prepare(config)
    context = load_context(config, cache_path=config.results_path)
    # No spinner here: a first load converts a GGUF file under its own progress bar.
    log.note(f"loaded {config.model} and {context.task.name}: {time.perf_counter() - started:.0f}s")
    context.space(config.target_speedup, **config.space_options)  # an impossible target fails before any evaluation
    for path, schedule in zip(config.init, plan.init):
        try:
            schedule.check_fits(context.model)
        except ColasearchError as error:
            raise ColasearchError(f"--init {path}: {error}") from None

    outcome, objective = _search(context, config, plan, log)
    if outcome.best is None or outcome.best_value == float("-inf"):
        raise session.SearcherError(f"{config.searcher} found no schedule reaching {config.target_speedup:g}x in "
                                    f"{outcome.evaluations} evaluations; raise --budget or lower --target-speedup")
    if outcome.searcher.oracle:
        return _oracle_result(config, context, outcome, plan)

    full, found, baseline = _score_all(context, config, outcome, objective, log)
    total_seconds = time.perf_counter() - started
    candidates = [candidate for candidate in (full, baseline, found) if candidate is not None]
    rows = [_row(candidate, context.metric, objective if config.speculative else None) for candidate in candidates]
    confirmations = [check.to_dict() for check in outcome.confirmations]
    schedule = session.deployable(context, found, config.objective, config.target_speedup, config.searcher,
                                  config.budget, config.seed, _provenance(config, context, outcome, plan, full,
                                                                          found, baseline, objective, confirmations))
    try:
        schedule.save(plan.out)
    except ColasearchError as error:  # a full disk: the search is not lost, its study is on disk
        raise ColasearchError(f"{error}; the study {plan.storage} is kept: rerun with --resume to finish") from None
    return RunResult(config=config, schedule=schedule, out=plan.out, task=context.task.name, metric=context.metric,
                     outcome=outcome, rows=rows, candidates=candidates, confirmations=confirmations,
                     notes=_notes(context, outcome, found, candidates, confirmations), total_seconds=total_seconds)


def _prepare(config: RunConfig) -> _Plan:
    """What depends on this machine, checked before the model loads: devices, threads, files to read and
    write. A refused run changes nothing; only then does ``overwrite`` empty the results file."""
    from colasearch.devices import resolve_placement
    from colasearch.run_checks import check_measured_workers, check_run_outputs
    from colasearch.schedule import Schedule
    from colasearch.engine.session import ray_workers

    workers, gpus_per_worker = ray_workers(resolve_placement(config.device, config.dtype, config.device_map),
                                           config.workers, config.gpus_per_worker)
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    init = tuple(Schedule.load(path) for path in config.init)  # a malformed file fails before the model loads
    out, storage = config.schedule_path, config.study_storage
    check_run_outputs(out, storage, config.resume, config.overwrite)
    if config.objective == "measured":
        check_measured_workers(workers, gpus_per_worker)
    if config.overwrite:
        from colasearch.evaluator.result_cache import clear_results

        clear_results(config.results_path)
    window = config.parallel if config.parallel is not None else max(1, workers)
    return _Plan(workers, gpus_per_worker, window, out, storage, init)


def evaluator_options(config: RunConfig) -> dict:
    """What every evaluator of the run (this process's and each Ray worker's) is built with beyond the split."""
    options = {"speculative_prompts": config.speculative_prompts, "draft_tokens": config.draft_tokens} \
        if config.speculative else {}
    if config.prefix_cache_mb is not None:
        options["prefix_cache_mb"] = config.prefix_cache_mb
    if config.objective == "measured":
        options["measure_speed"] = True  # every candidate is timed where it is scored
    return options


def load_context(config: RunConfig, cache_path: Path | None = None):
    """The model, the task and its evaluator, as the config places and splits them."""
    from colasearch.engine.session import RunContext

    return RunContext.load(config.model, config.task_spec, config.search_size, config.heldout_size, config.split_seed,
                           cache_path=cache_path, confirm_size=config.confirm_size,
                           search_metric=config.search_metric, device=config.device, dtype=config.dtype,
                           device_map=config.device_map, **evaluator_options(config))


def _search(context, config: RunConfig, plan: _Plan, log: RunLog):
    """The search, on Ray workers when the plan has any. A Ray started here is stopped when the search ends,
    however it ends: its processes would compete with the held-out scoring and, worse, with the timing."""
    from colasearch.distributed.cluster import ray_started_here
    from colasearch.engine import session

    with ray_started_here(), \
            session.open_executor(context, plan.workers, config.address, plan.gpus_per_worker, plan.window,
                                  config.threads) as executor, \
            log.search(executor, config.budget, config.search_size) as counted:
        return session.search_with(context, config.searcher, config.budget, config.target_speedup, config.seed,
                                   config.objective, plan.storage, config.resume, dict(config.searcher_options),
                                   config.space_options, progress=log.live_bar, executor=counted,
                                   window=plan.window, overwrite=config.overwrite, init=plan.init)


def score(context, candidate, measure: bool):
    """Held-out numbers, then the speed: callers stop Ray before, so nothing else runs while it is timed."""
    from colasearch.engine import session

    if candidate.heldout is None:
        candidate.heldout = context.evaluator.evaluate(candidate.schedule, split="heldout")
    if measure and not candidate.timed:
        candidate.speed = session.measure_speed(context.model, candidate.schedule)
        candidate.timed = True
    return candidate


def _score_all(context, config: RunConfig, outcome, objective, log: RunLog):
    """The full model, the choice and the best baseline on the held-out split (and timed, with ``measure``)."""
    from colasearch.engine import session
    from colasearch.engine.session import Candidate

    scoring = f"held-out scoring ({config.heldout_size} items){' and timing' if config.measure else ''}"
    with log.phase(f"full model: {scoring}"):
        full = score(context, Candidate("full model", None, context.evaluator.evaluate(None, "search")), config.measure)
    with log.phase(f"found schedule: {scoring}"):
        found = score(context, Candidate(f"{config.searcher} (found)", outcome.best, outcome.best_result),
                      config.measure)
    best_baseline = None
    for name in config.baselines:
        if name == config.searcher:
            continue
        with log.phase(f"baseline {name}: search"):
            baseline_outcome, _ = session.search_with(context, name, 1 if name != "random" else config.budget,
                                                      config.target_speedup, config.seed, config.objective, None,
                                                      False, {}, config.space_options)
        if baseline_outcome.best is None:
            continue
        candidate = Candidate(f"{name} (baseline)", baseline_outcome.best, baseline_outcome.best_result)
        if best_baseline is None or objective.scalar(candidate.search) > objective.scalar(best_baseline.search):
            best_baseline = candidate
    if best_baseline is not None:
        with log.phase(f"best baseline: {scoring}"):
            score(context, best_baseline, config.measure)
    return full, found, best_baseline


def _row(candidate, metric: str, speculative_objective) -> dict:
    row = {"schedule": candidate.label,
           "layers": "all" if candidate.schedule is None else len(candidate.schedule.layers),
           "heldout": candidate.heldout.quality[metric], "search": candidate.search.quality[metric],
           "ideal_speedup": candidate.search.ideal_speedup, "measured_speedup": candidate.measured_speedup,
           "speed": None if candidate.speed is None else candidate.speed.to_dict()}
    if speculative_objective is not None:
        row.update(acceptance_heldout=candidate.heldout.acceptance_rate,
                   speculative_speedup_heldout=speculative_objective.values(candidate.heldout)[0])
    return row


def _notes(context, outcome, found, candidates, confirmations: list[dict]) -> list[str]:
    """What a person reading the table should also know: speeds not shipped, the confirmation, the choice."""
    from colasearch.engine.confirmation import unconfirmed_reason

    # Each timed figure with what its table cell has no room for: interval, pairs, bound and load.
    notes = [candidate.speed.sentence(candidate.label) for candidate in candidates if candidate.speed is not None]
    for check in confirmations:
        notes.append(f"confirmation on {outcome.confirm_items} unused items: {check['schedule']} leads the start by "
                     f"{check['lead']:+.4f} ± {check['standard_error']:.4f}"
                     f" ({'holds' if check['holds'] else 'does not hold'})")
    unconfirmed = unconfirmed_reason(outcome.start, found.schedule, confirmations,
                                     len(context.evaluator.splits.confirm))
    if unconfirmed:
        notes.append(f"the choice's lead over the run's start was not confirmed on unused items ({unconfirmed}); "
                     "it rests on the search split's bound alone")
    highest = outcome.highest
    if highest is not None:
        notes.append(f"chose {found.schedule.chain}, not the highest search value ({highest.chain}): its lead over "
                     f"the run's start was within {outcome.choice_z or 1.0:.1f} paired standard "
                     "errors (a lead the luckiest of that many candidates reaches by chance) or did not hold on "
                     "the confirmation items")
    return notes


def _provenance(config: RunConfig, context, outcome, plan: _Plan, full, found, baseline, objective,
                confirmations: list[dict]) -> dict:
    provenance = {"_full": full, "task_spec": config.task_spec, "storage": plan.storage, "study": outcome.store.name,
                  "evaluations": outcome.evaluations, "search_size": config.search_size,
                  "heldout_size": config.heldout_size, "split_seed": config.split_seed,
                  "searcher_options": dict(config.searcher_options) or None,
                  "confirm_size": len(context.evaluator.splits.confirm), "confirmation": confirmations or None,
                  "search_metric": context.objective_metric}
    if baseline is not None:
        provenance["baseline"] = {"name": baseline.label.split(" ")[0],
                                  "heldout": baseline.heldout.quality[context.metric],
                                  "ideal_speedup": baseline.search.ideal_speedup}
    if config.speculative:
        provenance["speculative"] = {"draft_tokens": config.draft_tokens, "prompts": config.speculative_prompts,
                                     "acceptance_heldout": found.heldout.acceptance_rate,
                                     "acceptance_search": found.search.acceptance_rate,
                                     "expected_speedup_heldout": objective.values(found.heldout)[0]}
    return provenance


def _oracle_result(config: RunConfig, context, outcome, plan: _Plan) -> RunResult:
    """An oracle searcher picks per item, which no single schedule can ship: its report, and no file."""
    report = outcome.searcher.oracle_report()
    notes = []
    if report["items"] == 0:
        notes.append("oracle: the evaluator returned no per-item results (EvalResult.per_item)")
    notes.append(f"oracle mode writes no schedule; the best single schedule was {outcome.best.chain}")
    return RunResult(config=config, schedule=None, out=None, task=context.task.name, metric=context.metric,
                     outcome=outcome, notes=notes, oracle_report=report)
