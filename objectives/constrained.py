"""Maximize quality subject to ideal speedup >= a target (``--target-speedup 1.25``)."""

from __future__ import annotations

from typing import ClassVar

from colasearch.objectives.base import Direction
from colasearch.objectives.quality import ObjectiveError, QualityObjective
from colasearch.results import EvalResult
from colasearch.target import Target


class ConstrainedObjective(QualityObjective):
    name: ClassVar[str] = "constrained"
    takes_target: ClassVar[bool] = True

    def __init__(self, metric: str, direction: Direction = "maximize", target_speedup: Target | float | None = None):
        """``target_speedup``: the search space's :class:`Target` (``space.target``), or a number."""
        super().__init__(metric, direction)
        self.target = Target.of(target_speedup)
        if self.target is None:
            raise ObjectiveError("the constrained objective needs a target speedup (e.g. --target-speedup 1.25)")
        if not self.target.speedup >= 1.0:
            raise ObjectiveError(f"target speedup must be at least 1.0, got {self.target.speedup}")

    def speedup(self, result: EvalResult) -> float:
        """The figure the target holds a result to; the measured objective puts its timing here."""
        return result.ideal_speedup

    def feasible(self, result: EvalResult) -> bool:
        return self.target.reaches(self.speedup(result))

    def describe(self) -> dict:
        return {**super().describe(), "target_speedup": self.target_speedup}
