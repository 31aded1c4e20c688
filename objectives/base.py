"""The objective protocol every searcher consumes."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from colasearch.errors import ColasearchError
from colasearch.results import EvalResult
from colasearch.target import Target

Direction = Literal["maximize", "minimize"]

#: The settings only some objectives take: the keyword, its name in messages, and the built-in that takes it.
_OPTIONAL_SETTINGS = {"lam": ("lambda", "scalarized"), "draft_tokens": ("draft_tokens", "speculative")}


class ObjectiveError(ColasearchError):
    """An unknown objective, metric or option."""


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
    #: Whether the objective holds results to a speed target, and so is built with ``target_speedup``.
    takes_target: ClassVar[bool] = True
    #: Whether a run's speed target (``--target-speedup``, the search space's) is this objective's floor. The
    #: speculative objective reads it as the draft's cost bound instead and gets no floor in a run.
    run_target_is_floor: ClassVar[bool] = True

    @classmethod
    def from_settings(cls, metric: str, direction: Direction = "maximize", target_speedup: Target | float | None = None,
                      lam: float | None = None, draft_tokens: int | None = None) -> BaseObjective:
        """Build from the settings every objective is offered (``make_objective`` and a run call this): the
        metric, its direction and the speed target, and the options only some objectives take, which one that
        does not take them refuses rather than ignores. Override where a class takes an option or no target."""
        cls.refuse_settings(lam=lam, draft_tokens=draft_tokens)
        return cls(metric, direction, target_speedup=target_speedup) if cls.takes_target else cls(metric, direction)

    @classmethod
    def refuse_settings(cls, **given) -> None:
        """A one-line error for the first of ``given`` (``lam``, ``draft_tokens``) that is set."""
        for option, value in given.items():
            if value is not None:
                label, taker = _OPTIONAL_SETTINGS[option]
                raise ObjectiveError(f"objective {cls.name!r} takes no {label} (only {taker!r} does)")

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
