"""The objective protocol every searcher consumes."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from colasearch.results import EvalResult
from colasearch.target import Target

Direction = Literal["maximize", "minimize"]


class BaseObjective(ABC):
    """Turns an evaluation into the numbers a searcher optimizes.

    Single-objective searchers use :meth:`scalar` (higher is better; infeasible is ``-inf``).
    Multi-objective searchers (NSGA-II, Pareto reports) use :meth:`values` with :attr:`directions`.
    """

    name: ClassVar[str]
    #: The speed floor a feasible result reaches, the search space's (``space.target``); None: no floor.
    target: Target | None = None
    #: The task metric the objective reads, where it reads one.
    metric: str | None = None
    #: Whether candidates may race on item subsets (``colasearch.engine.racing``): only where the scalar is
    #: :attr:`metric` alone, so that a subset's per-item values compare what the objective compares.
    raceable: ClassVar[bool] = False

    @property
    def target_speedup(self) -> float | None:
        return self.target.speedup if self.target is not None else None

    @property
    @abstractmethod
    def directions(self) -> tuple[Direction, ...]:
        """One direction per entry of :meth:`values`."""

    @abstractmethod
    def values(self, result: EvalResult) -> tuple[float, ...]:
        """The objective's raw values for a result."""

    @abstractmethod
    def feasible(self, result: EvalResult) -> bool:
        """Whether the result satisfies the objective's constraints (e.g. the speed target)."""

    def scalar(self, result: EvalResult) -> float:
        if not self.feasible(result):
            return -math.inf
        value = self.values(result)[0]
        return value if self.directions[0] == "maximize" else -value
