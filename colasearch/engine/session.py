"""One search run from names to numbers: shared by ``colasearch run``, ``colasearch compare`` and the bench."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from colasearch.errors import ColasearchError
from colasearch.executor import InProcessExecutor
from colasearch.results import EvalResult
# The run's defaults and its first checks belong to the run's config; named here too for older callers.
from colasearch.run_config import (  # noqa: F401
    DEFAULT_BUDGET, DEFAULT_SEARCHER, DEFAULT_TARGET, check_run_options, default_out, parse_options,
)
from colasearch.schedule import Metrics, Provenance, QualityMetric, Schedule, SpeedupMetric
from colasearch.engine.loop import SearchOutcome, run_search
from colasearch.engine.storage import RunStore
from colasearch.searchers.base import SearcherError, SearchSpace, make_searcher

#: The confirmation split holds up to this many items per search item; a confirmation uses as many of them as
#: the budget it has left affords (``colasearch.engine.confirmation``).
CONFIRM_SIZE_PER_SEARCH_ITEM = 4
# Search metrics that compare a schedule with the full model token by token: the evaluator computes the
# full model's reference for them.
DENSE_METRICS = ("kl", "prob_kl", "text_kl", "choice_kl")
#: Dense metrics that also need the KL at the item's own text tokens, not only at the scored ones.
CONTEXT_METRICS = ("text_kl",)


@dataclass
class RunContext:
    """A model, a task and its evaluator, loaded once and shared by the searches of one command. The run's
    evaluator settings are that evaluator's config (:attr:`evaluator_config`): fresh evaluators and Ray workers
    are built from it, so no setting is kept twice."""

    model_name: str
    model: object
    tokenizer: object
    task: object
    evaluator: object
    task_spec: str = ""
    # What the searchers optimize on the search split; reports always use the task's primary metric.
    search_metric: str | None = None
    # Where the model runs (colasearch.devices.Placement); Ray workers load their replicas the same way.
    placement: object = None

    @classmethod
    def load(cls, model_name: str, task_spec: str | list[str], search_size: int = 64, heldout_size: int = 200,
             split_seed: int = 0, cache_path: Path | None = None, search_metric: str | None = None,
             task_aggregate: str = "mean", device: str = "auto", dtype: str = "auto", device_map: str | None = None,
             confirm_size: int | None = None, **evaluator_options) -> RunContext:
        """``evaluator_options`` go to every :class:`~colasearch.evaluator.Evaluator` of the run; with
        ``speculative_prompts > 0`` results carry the draft acceptance the ``speculative`` objective reads.
        A list of task specs is one composite task (``task_aggregate``: mean or min). ``confirm_size``: items
        after the held-out ones on which the final choice's lead must hold (default 4 x ``search_size``; 0: none).
        ``device``, ``dtype`` and ``device_map`` as :func:`colasearch.devices.resolve_placement` takes them."""
        from colasearch.devices import resolve_placement
        from colasearch.evaluator import Evaluator
        from colasearch.evaluator.config import EvaluatorConfig
        from colasearch.loading import load_model
        from colasearch.tasks import load_task
        from colasearch.tasks.composite import task_spec as single_spec

        placement = resolve_placement(device, dtype, device_map)
        evaluator_options["confirm_size"] = CONFIRM_SIZE_PER_SEARCH_ITEM * search_size if confirm_size is None \
            else confirm_size
        if not isinstance(task_spec, str):
            task_spec = single_spec(list(task_spec), task_aggregate)
        task = load_task(task_spec)
        metric = resolve_search_metric(task, search_metric)
        if metric in DENSE_METRICS:
            evaluator_options["dense_kl"] = True  # Ray workers build their evaluators from the same options
        if metric in CONTEXT_METRICS:
            evaluator_options["context_kl"] = True
        config = EvaluatorConfig(search_size=search_size, heldout_size=heldout_size, seed=split_seed,
                                 **evaluator_options)  # a misspelt option fails here, before the model loads
        model, tokenizer = load_model(model_name, dtype=placement.dtype, device=str(placement.device),
                                      device_map=placement.device_map)
        evaluator = Evaluator(model, tokenizer, task, config, cache_path=cache_path)
        return cls(model_name, model, tokenizer, task, evaluator, task_spec, metric, placement)

    def fresh_evaluator(self, cache_path: Path | None = None):
        """A new evaluator with empty caches, so one searcher's work does not speed up the next."""
        from colasearch.evaluator import Evaluator

        return Evaluator(self.model, self.tokenizer, self.task, self.evaluator_config, cache_path=cache_path)

    @property
    def evaluator_config(self):
        """What every evaluator of the run is built with (:class:`~colasearch.evaluator.config.EvaluatorConfig`);
        Ray workers receive it as is."""
        return self.evaluator.config

    @property
    def search_size(self) -> int:
        return self.evaluator_config.search_size

    @property
    def heldout_size(self) -> int:
        return self.evaluator_config.heldout_size

    @property
    def split_seed(self) -> int:
        return self.evaluator_config.seed

    def objective(self, name: str, target_speedup):
        """The run's objective, built from the run's settings; the run's target is its floor unless the class
        reads the target otherwise (``run_target_is_floor``: the speculative objective's target is the draft's
        cost bound). ``draft_tokens`` is given only where the run measures acceptance (speculative prompts)."""
        from colasearch.objectives import make_objective, objective_class

        metric = self.objective_metric
        floor = target_speedup if objective_class(name).run_target_is_floor else None
        config = self.evaluator_config
        draft_tokens = config.draft_tokens if config.speculative_prompts else None
        return make_objective(name, metric=metric, direction=self.task.metric_directions[metric],
                              target_speedup=floor, draft_tokens=draft_tokens)

    def space(self, target_speedup: float, **options) -> SearchSpace:
        space = SearchSpace.for_model(self.model, target_speedup=target_speedup, **options)
        space.check_target()
        return space

    @property
    def metric(self) -> str:
        return self.task.primary_metric

    @property
    def objective_metric(self) -> str:
        return self.search_metric or self.task.primary_metric


def resolve_search_metric(task, requested: str | None) -> str:
    """``None`` or ``primary``: the task's primary metric; ``smooth``: its smooth counterpart where the task
    has one (multiple choice: ``prob`` for ``acc``); ``dense``: the task's label-free signal from every token
    where it has one (multiple choice: ``text_kl``; a perplexity task is dense already); otherwise a metric
    the task reports."""
    primary = task.primary_metric
    if requested in (None, "primary"):
        return primary
    if requested == "smooth":
        return task.smooth_metrics.get(primary, primary)
    if requested == "dense":
        return task.dense_metric or primary
    if requested not in task.metric_directions:
        raise ColasearchError(f"--search-metric {requested!r} is not reported by task {task.name!r} "
                              f"(it reports: {', '.join(sorted(task.metric_directions))}; or primary, smooth, dense)")
    return requested


def study_name(model: str, task: str, searcher: str, objective: str, target: float, seed: int, split: str,
               options: dict) -> str:
    extras = ",".join(f"{key}={options[key]}" for key in sorted(options))
    return f"colasearch|{model}|{task}|{searcher}|{objective}|target={target:g}|seed={seed}|split={split}|{extras}"


def metric_option(context: RunContext) -> dict:
    """Part of the study name only when it differs from the primary metric, so older studies still resume."""
    return {} if context.objective_metric == context.metric else {"metric": context.objective_metric}


@dataclass
class Candidate:
    """A schedule with its numbers on both splits (``None`` schedule = the full model)."""

    label: str
    schedule: Schedule | None
    search: EvalResult
    heldout: EvalResult | None = None
    # A colasearch.speed.SpeedMeasurement; None until timed, and for the full model (its own reference).
    speed: object = None
    timed: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def measured_speedup(self) -> float | None:
        """The figure that ships: ``None`` when not timed, or when the protocol flagged it."""
        if self.schedule is None:
            return 1.0 if self.timed else None
        return None if self.speed is None else self.speed.speedup


def search_with(context: RunContext, searcher_name: str, budget: int, target_speedup: float, seed: int,
                objective_name: str = "constrained", storage: str | Path | None = None, resume: bool = False,
                options: dict | None = None, space_options: dict | None = None, progress: bool = False,
                evaluator=None, executor=None, window: int = 1, racing=None,
                init: tuple[Schedule, ...] = (), overwrite: bool = False) -> tuple[SearchOutcome, object]:
    """Run one searcher to its budget. ``executor`` defaults to in-process evaluation with ``evaluator``;
    a worker pool (e.g. Ray actors) is passed here instead. ``overwrite`` drops the study's stored evaluations."""
    options = dict(options or {})
    evaluator = evaluator or context.evaluator
    space = context.space(target_speedup, **(space_options or {}))
    objective = context.objective(objective_name, space.target)  # the space owns the target; objectives ask it
    try:
        searcher = make_searcher(searcher_name, space, objective, seed=seed, **options)
    except TypeError as error:
        raise SearcherError(f"searcher {searcher_name!r}: {error}") from None
    name = study_name(context.model_name, context.task.name, searcher_name, objective_name, target_speedup, seed,
                      f"{context.search_size}/{context.heldout_size}/{context.split_seed}"
                      f"/{context.evaluator_config.confirm_size}",
                      {**options, **(space_options or {}), **metric_option(context),
                       # warm starts steer the search: a resume must start from the same ones
                       **({"init": "+".join(schedule.key for schedule in init)} if init else {})})
    store = RunStore(storage, name, objective.directions, resume=resume, overwrite=overwrite)
    searcher.init_schedules = tuple(init)
    stored_importance = store.attribute("expert_importance")
    if stored_importance is not None:
        searcher.use_importance(stored_importance)  # calibrated once per study, read back on resume
    try:
        outcome = run_search(searcher, executor or InProcessExecutor(evaluator), objective, budget, store=store,
                             evaluator=evaluator, progress=progress, window=window, racing=racing)
        for attribute, value in searcher.study_attributes().items():
            store.set_attribute(attribute, value)
    finally:
        store.close()  # the journal's writer lock goes with the search, not with the outcome object
    outcome.searcher = searcher
    outcome.store = store
    return outcome, objective


def ray_workers(placement, workers: int | None, gpus_per_worker: float | None) -> tuple[int, float]:
    """``(workers, gpus_per_worker)`` with the defaults filled in from this machine's GPUs.

    On CUDA each worker defaults to one GPU (a split model, ``device_map``: all of them) and the count to
    as many workers as the GPUs hold; on the CPU one worker with no GPU, as before.
    """
    from colasearch.devices import cuda_count

    gpus = cuda_count() if placement is not None and placement.device.type == "cuda" else 0
    if gpus_per_worker is None:
        gpus_per_worker = (float(gpus) if placement.device_map else 1.0) if gpus else 0.0
    if workers is None:
        workers = max(1, int(gpus / gpus_per_worker + 1e-9)) if gpus and gpus_per_worker > 0 else 1
    return workers, gpus_per_worker


def open_executor(context: RunContext, workers: int, address: str | None = None, gpus_per_worker: float = 0.0,
                  window: int = 1, threads: int | None = None):
    """``workers=0`` evaluates in this process; otherwise Ray actors, each with its own model replica
    placed like the context's (on the GPU Ray assigns it when ``gpus_per_worker > 0``) and ``threads`` CPU
    threads, as many of Ray's CPUs reserved (``None``: the cluster's CPUs divided among the workers)."""
    if workers < 0:
        raise ColasearchError(f"--workers must be 0 (no Ray) or more, got {workers}")
    if workers == 0:
        return InProcessExecutor(context.evaluator, batch=window)
    from colasearch.distributed import EvaluatorSpec, RayExecutor, init_ray

    init_ray(address)
    placement = context.placement
    where = {} if placement is None else {"device": str(placement.device), "dtype": placement.dtype_name,
                                          "device_map": placement.device_map}
    spec = EvaluatorSpec(context.model_name, context.task_spec, context.evaluator_config, gpus=gpus_per_worker,
                         workers=workers, **where)
    return RayExecutor(spec, workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=threads)


def measure_speed(model, schedule: Schedule | None, protocol=None):
    """The schedule's speed against the full model by colasearch.speed's protocol (``None``: the defaults).
    The full model is its own reference: nothing to time."""
    from colasearch.benchmark import measure_speedup

    if schedule is None:
        return None
    return measure_speedup(model, schedule, protocol)


def portable_location(value):
    """A task spec (``kind:path``, or a list of them) or a storage (a path or a URL like ``sqlite:///path``)
    with each path cut to its file name, so a shipped schedule does not carry the author's file system."""
    if isinstance(value, (list, tuple)):
        return [portable_location(item) for item in value]
    text = str(value)
    prefix, separator, rest = text.rpartition(":") if "://" not in text else text.partition("://")
    if not separator or "/" not in rest and "\\" not in rest:
        return Path(text).name if "/" in text else text
    return f"{prefix}:///{Path(rest).name}" if separator == "://" else f"{prefix}{separator}{Path(rest).name}"


def deployable(context: RunContext, candidate: Candidate, objective_name: str, target_speedup: float,
               searcher: str, budget: int, seed: int, extra_provenance: dict) -> Schedule:
    """The found schedule as a file: model fingerprint, held-out and search quality, ideal and measured speedup."""
    from colasearch.version import __version__
    from colasearch.benchmark import device_name
    from colasearch.loading import portable_name

    metric = context.metric
    full = extra_provenance.pop("_full")
    # Where the author's task file and study lived means nothing elsewhere: keep the file names only.
    for key in ("task_spec", "storage"):
        if extra_provenance.get(key):
            extra_provenance[key] = portable_location(extra_provenance[key])
    if extra_provenance.get("study") and context.model_name:
        # The study is named after the model as the user typed it; the shipped file names it portably.
        extra_provenance["study"] = extra_provenance["study"].replace(context.model_name,
                                                                      portable_name(context.model_name))
    quality = QualityMetric(metric=metric, heldout=candidate.heldout.quality[metric],
                            full_heldout=full.heldout.quality[metric], search=candidate.search.quality[metric],
                            full_search=full.search.quality[metric])
    timing = candidate.speed.record() if candidate.speed is not None else {}
    speedup = SpeedupMetric(ideal=candidate.search.ideal_speedup, device=device_name(context.model), **timing)
    provenance = Provenance(searcher=searcher, budget=budget, seed=seed, colasearch_version=__version__,
                            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                            objective=objective_name, target_speedup=target_speedup, **extra_provenance)
    # A shipped file names its model portably: never the author's absolute path to a GGUF file.
    return Schedule.from_layers(candidate.schedule.layers, model=context.model, name=portable_name(context.model_name),
                                experts=candidate.schedule.experts,
                                task=context.task.name, metrics=Metrics(quality=quality, speedup=speedup),
                                provenance=provenance)
