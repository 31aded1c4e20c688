"""Several tasks scored as one, for one schedule per model across tasks: ``--task A@2 --task B``.

Items are the union of the sub-tasks' items, their ids prefixed with the sub-task's name, so the
search / held-out split still goes item by item (each sub-task gets a share of a split in
proportion to its size). Metrics are every sub-task's own (``name/metric``), each sub-task's
primary metric as a share of the full model's on the same split (``name/relative``), and their
aggregate, the primary metric: ``weighted_mean`` or ``worst`` (the minimum).

Why a share of the full model: sub-tasks' metrics have different units and directions (accuracy
up, perplexity down), and a mean of raw numbers would let one task's scale decide. ``value / full``
(``full / value`` for metrics to minimize) is unitless, 1 for the full model, and 0.9 means "keeps
90 % of the full model's quality" on every kind of task. The evaluator supplies the full model's
values (``relative_to_full``); ``weighted_mean_smooth`` / ``worst_smooth`` aggregate the sub-tasks'
smooth metrics (multiple choice: ``prob``) the same way, for ``--search-metric smooth``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from colasearch.errors import TaskError
from colasearch.tasks.base import TASK_KINDS, Item, ModelTask, Scorer, ScoringTask, Task

AGGREGATES = {"mean": "weighted_mean", "min": "worst"}
SPEC_PREFIX = "composite:"


def parse_weighted(spec: str) -> tuple[str, float]:
    """``SPEC@WEIGHT`` -> (SPEC, WEIGHT); without a numeric ``@WEIGHT`` suffix the weight is 1."""
    head, separator, tail = spec.rpartition("@")
    if not separator or not head:
        return spec, 1.0
    try:
        weight = float(tail)
    except ValueError:
        return spec, 1.0  # an @ that is part of the spec (a path), not a weight
    if not math.isfinite(weight) or weight <= 0:
        raise TaskError(f"task weight in {spec!r} must be a positive number")
    return head, weight


def task_spec(specs: list[str] | tuple[str, ...], aggregate: str = "mean") -> str:
    """One spec for ``--task`` given once or several times: a single task stays as it is; several become
    a ``composite:`` spec (JSON) that ``load_task`` reads, so it travels wherever a spec does (Ray workers)."""
    if aggregate not in AGGREGATES:
        raise TaskError(f"--task-aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    specs = [spec for spec in specs if spec]
    if not specs:
        raise TaskError("no task given")
    if len(specs) == 1:
        return parse_weighted(specs[0])[0]
    weighted = [parse_weighted(spec) for spec in specs]
    if aggregate == "min" and any(weight != 1.0 for _, weight in weighted):
        raise TaskError("task weights (@WEIGHT) apply to --task-aggregate mean; min takes the worst task")
    return SPEC_PREFIX + json.dumps({"aggregate": aggregate, "tasks": [[spec, weight] for spec, weight in weighted]})


def retained(value: float, full: float, direction: str) -> float:
    """The share of the full model's quality a schedule keeps: value / full for a metric to maximize,
    full / value for one to minimize. Where the ratio is undefined (a zero denominator): 1 when the
    schedule is at least as good as the full model, else 0."""
    numerator, denominator = (value, full) if direction == "maximize" else (full, value)
    if denominator > 0:
        return numerator / denominator
    at_least_as_good = value >= full if direction == "maximize" else value <= full
    return 1.0 if at_least_as_good else 0.0


class CompositeBase(Task):
    def __init__(self, tasks: list[Task], weights: list[float], aggregate: str = "mean"):
        if aggregate not in AGGREGATES:
            raise TaskError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
        self.tasks = tasks
        total = sum(weights)
        self.weights = [weight / total for weight in weights]
        self.aggregate = aggregate
        self.names = _unique_names([task.name for task in tasks])
        self.name = "+".join(self.names)
        self.primary_metric = AGGREGATES[aggregate]
        smooth = f"{self.primary_metric}_smooth"
        self.smooth_metrics = {self.primary_metric: smooth}
        self.metric_directions = {self.primary_metric: "maximize", smooth: "maximize"}
        for name, task in zip(self.names, tasks):
            self.metric_directions[f"{name}/relative"] = "maximize"
            self.metric_directions.update({f"{name}/{metric}": direction
                                           for metric, direction in task.metric_directions.items()})
        self._items: list[Item] | None = None

    def items(self) -> list[Item]:
        if self._items is None:
            self._items = [Item(f"{name}/{item.id}", (index, item))
                           for index, (name, task) in enumerate(zip(self.names, self.tasks)) for item in task.items()]
        return self._items

    def bind(self, tokenizer) -> None:
        for task in self.tasks:
            task.bind(tokenizer)
        self._items = None  # a sub-task's items may depend on the tokenizer (text windows)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "composite", "aggregate": self.aggregate,
                "tasks": [{"key": task.config_key(), "weight": weight, **task.describe()}
                          for task, weight in zip(self.tasks, self.weights)]}

    def by_task(self, items: list[Item]) -> list[list[int]]:
        """Indices into ``items`` of each sub-task's items, in order."""
        groups: list[list[int]] = [[] for _ in self.tasks]
        for position, item in enumerate(items):
            groups[item.data[0]].append(position)
        for name, group in zip(self.names, groups):
            if not group:
                raise TaskError(f"this split holds no item of task {name!r}; give a larger split size")
        return groups

    def prefixed(self, index: int, metrics: dict[str, float]) -> dict[str, float]:
        return {f"{self.names[index]}/{metric}": value for metric, value in metrics.items()}

    def relative_to_full(self, quality: dict[str, float], full: dict[str, float]) -> dict[str, float]:
        """``quality`` with each sub-task's share of the full model's quality and the aggregates added."""
        quality = dict(quality)
        shares, smooth_shares = [], []
        for name, task in zip(self.names, self.tasks):
            primary = task.primary_metric
            smooth = task.smooth_metrics.get(primary, primary)
            share = retained(quality[f"{name}/{primary}"], full[f"{name}/{primary}"], task.metric_directions[primary])
            quality[f"{name}/relative"] = share
            shares.append(share)
            smooth_shares.append(retained(quality[f"{name}/{smooth}"], full[f"{name}/{smooth}"],
                                          task.metric_directions[smooth]))
        quality[self.primary_metric] = self._aggregate(shares)
        quality[self.smooth_metrics[self.primary_metric]] = self._aggregate(smooth_shares)
        return quality

    def _aggregate(self, shares: list[float]) -> float:
        if self.aggregate == "min":
            return min(shares)
        return sum(weight * share for weight, share in zip(self.weights, shares))


class CompositeScoringTask(CompositeBase, ScoringTask):
    """All sub-tasks are scoring tasks: one packed forward for all, on the evaluator's fast path."""

    def __init__(self, tasks, weights, aggregate="mean"):
        super().__init__(tasks, weights, aggregate)
        self.needs_reference = any(task.needs_reference for task in tasks)

    def pack(self, items, tokenizer):
        packed: list = [None] * len(items)
        for index, group in enumerate(self.by_task(items)):
            for position, sequence in zip(group, self.tasks[index].pack([items[p].data[1] for p in group], tokenizer)):
                packed[position] = sequence
        return packed

    def metrics_with_model(self, items, packed, scores, with_model) -> dict[str, float]:
        metrics = {}
        for index, group in enumerate(self.by_task(items)):
            metrics.update(self.prefixed(index, self.tasks[index].metrics_with_model(
                [items[p].data[1] for p in group], [packed[p] for p in group], [scores[p] for p in group], with_model)))
        return metrics

    def metrics(self, items, packed, scores) -> dict[str, float]:
        return self.metrics_with_model(items, packed, scores, _no_model)


class CompositeModelTask(CompositeBase, ModelTask):
    """Some sub-task needs the model itself; scoring sub-tasks then run through the patched model too,
    scored by ``score`` (the evaluator hands its plain scorer over, :meth:`ModelTask.use_scorer`)."""

    def __init__(self, tasks, weights, aggregate="mean", score: Scorer | None = None):
        super().__init__(tasks, weights, aggregate)
        self.score = score

    def use_scorer(self, score: Scorer) -> None:
        self.score = score

    def run(self, model, tokenizer, items) -> dict[str, float]:
        metrics = {}
        for index, group in enumerate(self.by_task(items)):
            task, own = self.tasks[index], [items[p].data[1] for p in group]
            if isinstance(task, ModelTask):
                metrics.update(self.prefixed(index, task.run(model, tokenizer, own)))
                continue
            if self.score is None:
                raise TaskError("a composite task with scoring sub-tasks needs a scorer; "
                                "score it through colasearch.evaluator.Evaluator")
            packed = task.pack(own, tokenizer)
            scores = self.score(model, packed)
            metrics.update(self.prefixed(index, task.metrics_with_model(
                own, packed, scores, lambda work: work(model, tokenizer))))
        return metrics


def _no_model(work):
    raise TaskError("a sub-task needs the model; score the composite task through colasearch.evaluator.Evaluator")


def _unique_names(names: list[str]) -> list[str]:
    unique = []
    for name in names:
        candidate, number = name, 2
        while candidate in unique:
            candidate, number = f"{name}-{number}", number + 1
        unique.append(candidate)
    return unique


def composite_task(tasks: list[Task], weights: list[float] | None = None, aggregate: str = "mean") -> CompositeBase:
    weights = weights or [1.0] * len(tasks)
    if all(isinstance(task, ScoringTask) for task in tasks):
        return CompositeScoringTask(tasks, weights, aggregate)
    if any(task.needs_reference for task in tasks):
        # Beside a task that needs the patched model, the full model's predictions are not at hand.
        raise TaskError("a fidelity task can be combined with scoring tasks only (multiple choice, text, "
                        "generation without an extractor)")
    return CompositeModelTask(tasks, weights, aggregate)


def load_composite_task(argument: str, **options) -> CompositeBase:
    """``composite:{"aggregate": "mean", "tasks": [[SPEC, WEIGHT], ...]}`` (what ``task_spec`` writes);
    ``options`` go to every sub-task."""
    try:
        description = json.loads(argument)
        aggregate = description["aggregate"]
        pairs = [(str(spec), float(weight)) for spec, weight in description["tasks"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise TaskError('a composite task spec is composite:{"aggregate": "mean"|"min", "tasks": [[SPEC, WEIGHT], ...]}') from None
    if len(pairs) < 2:
        raise TaskError("a composite task needs at least two tasks")
    if any(not math.isfinite(weight) or weight <= 0 for _, weight in pairs):
        raise TaskError("composite task weights must be positive numbers")
    tasks = [TASK_KINDS.load(spec, **options) for spec, _ in pairs]
    return composite_task(tasks, [weight for _, weight in pairs], aggregate)
