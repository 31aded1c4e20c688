"""Baseline: balanced skipping of intermediate layers for a target speedup, first and last layers kept."""

from __future__ import annotations

from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.searchers.base import BaseSearcher


def unified_skips(space, count: int) -> list[tuple[int, str]]:
    """``count`` units spread evenly over the skippable range (their centres, so neither end is favoured)."""
    units = space.units
    if count <= 0:
        return []
    step = len(units) / count
    return [units[min(len(units) - 1, int(step * (index + 0.5)))] for index in range(count)]


class UnifiedSearcher(BaseSearcher):
    name = "unified"
    is_baseline = True

    def __init__(self, space, objective, seed: int = 0, budget: int | None = None, **options):
        super().__init__(space, objective, seed, budget, **options)
        self._asked = False
        self._done = False

    def schedule(self) -> Schedule:
        space = self.space
        for count in range(len(space.units) + 1):
            skipped = unified_skips(space, count)
            chain = space.chain_skipping(skipped)
            if chain and space.meets_target(chain):
                return space.schedule(chain)
        return space.schedule(space.chain_skipping(space.units))

    def ask(self, n: int = 1) -> list[Schedule]:
        if self._asked or n < 1:
            return []
        self._asked = True
        return [self.schedule()]

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        self._done = True

    @property
    def finished(self) -> bool:
        return self._done
