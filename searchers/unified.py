"""Baseline: balanced skipping of intermediate layers for a target speedup, first and last layers kept."""

from __future__ import annotations

from colasearch.schedule import Schedule
from colasearch.searchers.base import ConstructedBaseline


def unified_skips(space, count: int) -> list[tuple[int, str]]:
    """``count`` units spread evenly over the skippable range (their centres, so neither end is favoured)."""
    units = space.units
    if count <= 0:
        return []
    step = len(units) / count
    return [units[min(len(units) - 1, int(step * (index + 0.5)))] for index in range(count)]


class UnifiedSearcher(ConstructedBaseline):
    name = "unified"

    def schedule(self) -> Schedule:
        space = self.space
        for count in range(len(space.units) + 1):
            skipped = unified_skips(space, count)
            chain = space.chain_skipping(skipped)
            if chain and space.meets_target(chain):
                return space.schedule(chain)
        return space.schedule(space.chain_skipping(space.units))
