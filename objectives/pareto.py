"""Quality and ideal speedup kept as two objectives (NSGA-II, Pareto reports)."""

from __future__ import annotations

from typing import ClassVar

from colasearch.objectives.base import Direction
from colasearch.objectives.quality import QualityObjective
from colasearch.results import EvalResult
from colasearch.target import Target


class ParetoObjective(QualityObjective):
    name: ClassVar[str] = "pareto"
    takes_target: ClassVar[bool] = True
    # The scalar trades quality against cost, which differs between candidates: no item-subset race.
    raceable: ClassVar[bool] = False

    def __init__(self, metric: str, direction: Direction = "maximize", target_speedup: Target | float | None = None):
        super().__init__(metric, direction)
        self.target = Target.of(target_speedup)

    @property
    def directions(self) -> tuple[Direction, ...]:
        return (self.direction, "maximize")

    def values(self, result: EvalResult) -> tuple[float, ...]:
        return (self.quality(result), result.ideal_speedup)

    def feasible(self, result: EvalResult) -> bool:
        return self.target is None or self.target.reaches(result.ideal_speedup)

    def describe(self) -> dict:
        return {**super().describe(), "target_speedup": self.target_speedup}


def pareto_front(results: list[EvalResult], objective: ParetoObjective) -> list[EvalResult]:
    """The results no other result dominates (better or equal in both values, better in one)."""
    def oriented(result):
        quality, speedup = objective.values(result)
        return (quality if objective.direction == "maximize" else -quality, speedup)

    points = [oriented(result) for result in results]
    front = []
    for index, point in enumerate(points):
        dominated = any(other[0] >= point[0] and other[1] >= point[1] and other != point for other in points)
        if not dominated:
            front.append(results[index])
    return front
