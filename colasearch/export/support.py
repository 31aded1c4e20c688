"""What every export shares: refusing what a plain checkpoint cannot express."""

from __future__ import annotations

from colasearch.errors import ScheduleError
from colasearch.schedule import Schedule


def layer_level_problems(schedule: Schedule) -> list[str]:
    """Parts of a schedule that only colasearch's runtime can execute, each named."""
    problems = []
    partial = [f"{entry} (position {position})" for position, entry in enumerate(schedule.layers) if entry.run != "all"]
    if partial:
        problems.append("sub-block entries " + ", ".join(partial))
    if schedule.experts is not None:
        keys = ", ".join(sorted(schedule.experts.thresholds, key=lambda name: (len(name), name)))
        problems.append(f"expert thresholds (experts.thresholds: {keys})" if keys else "the 'experts' section")
    return problems


def require_layer_level(schedule: Schedule, target: str) -> None:
    problems = layer_level_problems(schedule)
    if problems:
        raise ScheduleError(
            f"cannot export as {target}: {'; '.join(problems)} have no equivalent outside colasearch's runtime"
        )
