"""Quality minus lambda times cost, cost being the fraction of the full model's FLOPs per token still run."""

from __future__ import annotations

from typing import ClassVar

from colasearch.objectives.base import Direction
from colasearch.objectives.quality import ObjectiveError, QualityObjective
from colasearch.results import EvalResult
from colasearch.target import Target

DEFAULT_LAMBDA = 0.5


class ScalarizedObjective(QualityObjective):
    """One value, higher is better: oriented quality - lam * (1 / ideal speedup)."""

    name: ClassVar[str] = "scalarized"
    # The scalar trades quality against cost, which differs between candidates: no item-subset race.
    raceable: ClassVar[bool] = False

    def __init__(self, metric: str, direction: Direction = "maximize", lam: float | None = None,
                 target_speedup: Target | float | None = None):
        super().__init__(metric, direction)
        self.lam = DEFAULT_LAMBDA if lam is None else float(lam)
        if self.lam < 0:
            raise ObjectiveError(f"lambda must be non-negative, got {self.lam}")
        self.target = Target.of(target_speedup)

    @classmethod
    def from_settings(cls, metric: str, direction: Direction = "maximize", target_speedup=None, lam=None,
                      draft_tokens=None) -> ScalarizedObjective:
        cls.refuse_settings(draft_tokens=draft_tokens)
        return cls(metric, direction, lam=lam, target_speedup=target_speedup)

    @property
    def directions(self) -> tuple[Direction, ...]:
        return ("maximize",)

    @staticmethod
    def cost(result: EvalResult) -> float:
        return 1.0 / result.ideal_speedup

    def values(self, result: EvalResult) -> tuple[float, ...]:
        return (self.oriented_quality(result) - self.lam * self.cost(result),)

    def feasible(self, result: EvalResult) -> bool:
        # A target, when given, is still a hard floor; lambda only trades quality against cost above it.
        return self.target is None or self.target.reaches(result.ideal_speedup)

    def describe(self) -> dict:
        return {**super().describe(), "lambda": self.lam, "target_speedup": self.target_speedup}
