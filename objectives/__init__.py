"""Objective plug-ins: what a searcher optimizes. ``make_objective(name, ...)`` builds one by name."""

from __future__ import annotations

from colasearch.objectives.base import BaseObjective, Direction, ObjectiveError
from colasearch.objectives.constrained import ConstrainedObjective
from colasearch.objectives.speculative import SpeculativeObjective
from colasearch.objectives.measured_cost import MeasuredConstrainedObjective, MeasuredCost
from colasearch.objectives.pareto import ParetoObjective, pareto_front
from colasearch.objectives.quality import QualityObjective
from colasearch.objectives.scalarized import ScalarizedObjective
from colasearch.registry import Registry
from colasearch.target import Target

ENTRY_POINT_GROUP = "colasearch.objectives"

OBJECTIVES: Registry[type[BaseObjective]] = Registry("objective", ENTRY_POINT_GROUP, {
    "quality": "colasearch.objectives.quality:QualityObjective",
    "constrained": "colasearch.objectives.constrained:ConstrainedObjective",
    "scalarized": "colasearch.objectives.scalarized:ScalarizedObjective",
    "pareto": "colasearch.objectives.pareto:ParetoObjective",
    "measured": "colasearch.objectives.measured_cost:MeasuredConstrainedObjective",
    "speculative": "colasearch.objectives.speculative:SpeculativeObjective",
}, error=ObjectiveError)


def objective_class(name: str) -> type[BaseObjective]:
    return OBJECTIVES.get(name)


def make_objective(name: str, metric: str, direction: Direction = "maximize", target_speedup: Target | float | None = None,
                   lam: float | None = None, draft_tokens: int | None = None, **options) -> BaseObjective:
    """Build an objective by name (:meth:`BaseObjective.from_settings`); options an objective does not take are
    refused, not ignored.

    ``target_speedup``: the search space's target (``space.target``), so that the objective's "feasible" and
    the space's "meets the target" are one answer; a number builds an equal one."""
    cls = objective_class(name)
    if options:
        raise ObjectiveError(f"objective {name!r}: unknown option {sorted(options)[0]!r}")
    return cls.from_settings(metric, direction, target_speedup=target_speedup, lam=lam, draft_tokens=draft_tokens)


__all__ = [
    "ENTRY_POINT_GROUP", "OBJECTIVES", "BaseObjective", "ConstrainedObjective", "Direction", "MeasuredConstrainedObjective", "MeasuredCost",
    "ObjectiveError", "ParetoObjective", "QualityObjective", "ScalarizedObjective", "SpeculativeObjective", "make_objective",
    "objective_class", "pareto_front",
]
