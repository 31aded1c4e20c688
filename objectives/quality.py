"""Quality alone: one metric of the task (acc, acc_norm, exact_match, perplexity, kl, top1_agreement)."""

from __future__ import annotations

from typing import ClassVar

from colasearch.objectives.base import BaseObjective, Direction, ObjectiveError
from colasearch.results import EvalResult

DIRECTIONS = ("maximize", "minimize")


class QualityObjective(BaseObjective):
    """Maximize (or minimize) one quality metric; every schedule is feasible."""

    name: ClassVar[str] = "quality"
    #: Candidates can race on item subsets: the scalar is the quality metric alone (where feasible).
    raceable: ClassVar[bool] = True
    #: Quality alone has no speed floor: a run's target bounds the search space, not this objective.
    takes_target: ClassVar[bool] = False

    def __init__(self, metric: str, direction: Direction = "maximize"):
        if direction not in DIRECTIONS:
            raise ObjectiveError(f"direction must be maximize or minimize, got {direction!r}")
        self.metric = metric
        self.direction = direction

    @property
    def directions(self) -> tuple[Direction, ...]:
        return (self.direction,)

    def quality(self, result: EvalResult) -> float:
        if self.metric not in result.quality:
            raise ObjectiveError(f"metric {self.metric!r} is not reported by task {result.task!r} "
                                 f"(it reports: {', '.join(sorted(result.quality))})")
        return float(result.quality[self.metric])

    def oriented_quality(self, result: EvalResult) -> float:
        """Quality with its sign set so that higher is better."""
        value = self.quality(result)
        return value if self.direction == "maximize" else -value

    def values(self, result: EvalResult) -> tuple[float, ...]:
        return (self.quality(result),)

    def feasible(self, result: EvalResult) -> bool:
        return True

    def describe(self) -> dict:
        return {"objective": self.name, "metric": self.metric, "direction": self.direction}
