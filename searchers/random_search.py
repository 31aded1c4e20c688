"""Baseline: uniformly random skip sets that just reach the target cost."""

from __future__ import annotations

import random

from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.searchers.base import BaseSearcher


class RandomSearcher(BaseSearcher):
    name = "random"
    is_baseline = True

    def __init__(self, space, objective, seed: int = 0, max_tries: int = 1000, **options):
        super().__init__(space, objective, seed, **options)
        self._random = random.Random(seed)
        self._seen: set[str] = set()
        self._max_tries = max_tries
        self._exhausted = False

    def sample(self) -> Schedule:
        """Skip units in a random order until the target is met, so the cost sits at the target."""
        order = list(self.space.units)
        self._random.shuffle(order)
        return self.space.schedule_skipping(self.space.skips_until_target(order))

    def ask(self, n: int = 1) -> list[Schedule]:
        proposals = []
        for _ in range(self._max_tries):
            if len(proposals) >= n:
                break
            candidate = self.sample()
            if candidate is not None and candidate.key not in self._seen:
                self._seen.add(candidate.key)
                proposals.append(candidate)
        else:
            self._exhausted = not proposals
        return proposals

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        """Random search does not learn."""

    @property
    def finished(self) -> bool:
        return self._exhausted
