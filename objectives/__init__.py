"""Objective plug-ins: what a searcher optimizes. ``make_objective(name, ...)`` builds one by name."""

from __future__ import annotations

from colasearch.objectives.base import BaseObjective, Direction
from colasearch.objectives.constrained import ConstrainedObjective
from colasearch.objectives.speculative import SpeculativeObjective
from colasearch.objectives.measured_cost import MeasuredConstrainedObjective, MeasuredCost
from colasearch.objectives.pareto import ParetoObjective, pareto_front
from colasearch.objectives.quality import ObjectiveError, QualityObjective
from colasearch.objectives.scalarized import ScalarizedObjective
from colasearch.target import Target

OBJECTIVES: dict[str, type[BaseObjective]] = {
    cls.name: cls for cls in (QualityObjective, ConstrainedObjective, ScalarizedObjective, ParetoObjective,
                               MeasuredConstrainedObjective, SpeculativeObjective)
}


def make_objective(name: str, metric: str, direction: Direction = "maximize", target_speedup: Target | float | None = None,
                   lam: float | None = None, draft_tokens: int | None = None, **options) -> BaseObjective:
    """Build an objective by name; options an objective does not take are refused, not ignored.

    ``target_speedup``: the search space's target (``space.target``), so that the objective's "feasible" and
    the space's "meets the target" are one answer; a number builds an equal one."""
    if name not in OBJECTIVES:
        raise ObjectiveError(f"unknown objective {name!r} (known: {', '.join(sorted(OBJECTIVES))})")
    if options:
        raise ObjectiveError(f"objective {name!r}: unknown option {sorted(options)[0]!r}")
    cls = OBJECTIVES[name]
    if name == "quality":
        return cls(metric, direction)
    if name == "scalarized":
        return cls(metric, direction, lam=lam, target_speedup=target_speedup)
    if lam is not None:
        raise ObjectiveError(f"objective {name!r} takes no lambda (only 'scalarized' does)")
    if name == "speculative":
        return cls(metric, direction, target_speedup=target_speedup, draft_tokens=draft_tokens or 4)
    if draft_tokens is not None:
        raise ObjectiveError(f"objective {name!r} takes no draft_tokens (only 'speculative' does)")
    return cls(metric, direction, target_speedup=target_speedup)


__all__ = [
    "OBJECTIVES", "BaseObjective", "ConstrainedObjective", "Direction", "MeasuredConstrainedObjective", "MeasuredCost",
    "ObjectiveError", "ParetoObjective", "QualityObjective", "ScalarizedObjective", "SpeculativeObjective", "make_objective", "pareto_front",
]
