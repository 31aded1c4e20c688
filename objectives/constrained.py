"""Maximize quality subject to ideal speedup >= a target (``--target-speedup 1.25``)."""

from __future__ import annotations

from typing import ClassVar

from colasearch.objectives.base import Direction
from colasearch.objectives.quality import ObjectiveError, QualityObjective
from colasearch.results import EvalResult

# Float sums of parameter counts: a schedule that hits the target exactly must not be rejected by rounding.
TOLERANCE = 1e-9


class ConstrainedObjective(QualityObjective):
    name: ClassVar[str] = "constrained"

    def __init__(self, metric: str, direction: Direction = "maximize", target_speedup: float | None = None):
        super().__init__(metric, direction)
        if target_speedup is None:
            raise ObjectiveError("the constrained objective needs a target speedup (e.g. --target-speedup 1.25)")
        if not target_speedup >= 1.0:
            raise ObjectiveError(f"target speedup must be at least 1.0, got {target_speedup}")
        self.target_speedup = float(target_speedup)

    def speedup(self, result: EvalResult) -> float:
        return result.ideal_speedup

    def feasible(self, result: EvalResult) -> bool:
        return self.speedup(result) >= self.target_speedup * (1 - TOLERANCE)

    def describe(self) -> dict:
        return {**super().describe(), "target_speedup": self.target_speedup}
