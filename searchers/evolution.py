"""Evolutionary search at constant cost, in the style of EvoPress (Sieberling et al., 2024).

The parent is a set of skipped units that sits on the target cost. It starts from the one-shot
pruning answer (the prior's least important units, or ``--init``), so the search begins where a
baseline ends. Each offspring swaps a few skipped units for kept ones, so its cost stays on the
target and no evaluation is spent on a schedule that cannot be chosen. EvoPress's multi-step
selection (offspring screened on few tokens, the survivors on more) is the run loop's racing: an
offspring clearly worse than the incumbent on a small item subset stops there, and one that reaches
the full split and beats the parent becomes the parent.
"""

from __future__ import annotations

import math
import random

from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.searchers.base import BaseSearcher, SearcherError, Unit
from colasearch.searchers.warm_start import skipped_units


class EvolutionSearcher(BaseSearcher):
    name = "evolution"

    def __init__(self, space, objective, seed: int = 0, *, max_swaps: int = 3,
                 prior_weight: float = 0.5, temperature: float = 1.0, max_tries: int = 200, **options):
        super().__init__(space, objective, seed, **options)
        if max_swaps < 1:
            raise SearcherError(f"evolution: max_swaps must be at least 1, got {max_swaps}")
        if not 0.0 <= prior_weight <= 1.0:
            raise SearcherError(f"evolution: prior_weight must be between 0 and 1, got {prior_weight}")
        if temperature <= 0:
            raise SearcherError(f"evolution: temperature must be positive, got {temperature}")
        self.max_swaps = max_swaps
        self.prior_weight = prior_weight
        self.temperature = temperature
        self.max_tries = max_tries
        self._random = random.Random(seed)
        self.parent: frozenset[Unit] | None = None
        self.parent_value = -math.inf
        self._seen: set[str] = set()
        self._proposed: dict[str, frozenset[Unit]] = {}
        self._starts: list[Schedule] = []  # starting points not yet handed out, one per ask if need be
        self._exhausted = False

    # -- protocol --------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> list[Schedule]:
        if self.parent is None:
            starts = self._starting_points()
            for skipped in starts:
                self._propose(skipped, self._starts)
            self.parent = starts[0]  # until a result comes back: the best evaluated start then takes over
        if self._starts:
            proposals, self._starts = self._starts[:max(n, 1)], self._starts[max(n, 1):]
            return proposals
        proposals: list[Schedule] = []
        tries = 0
        while len(proposals) < n and tries < self.max_tries:
            tries += 1
            self._propose(self._mutate(self.parent), proposals)
        if not proposals and tries >= self.max_tries:
            self._exhausted = True
        return proposals

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        skipped = self._proposed.pop(schedule.key, None)
        if skipped is None or result.estimated:
            return  # stopped by a race before the full split: it lost to the incumbent
        value = self.objective.scalar(result)
        if value > self.parent_value:
            self.parent, self.parent_value = skipped, value

    @property
    def finished(self) -> bool:
        return self._exhausted

    # -- candidates ------------------------------------------------------------------------------

    def _starting_points(self) -> list[frozenset[Unit]]:
        starts = [frozenset(skipped_units(schedule, self.space)) for schedule in self.init_schedules]
        return list(dict.fromkeys(starts)) if starts else self.space.one_shot_starts(self.prior)

    def _propose(self, skipped: frozenset[Unit], proposals: list[Schedule]) -> None:
        schedule = self.space.schedule_skipping(skipped)
        if schedule is None or schedule.key in self._seen:
            return
        self._seen.add(schedule.key)
        self._proposed[schedule.key] = skipped
        proposals.append(schedule)

    def _mutate(self, parent: frozenset[Unit]) -> frozenset[Unit]:
        """Swap 1..max_swaps skipped units for kept ones (fewer swaps more often, as in EvoPress)."""
        skipped = sorted(parent)
        kept = sorted(set(self.space.units) - parent)
        if not skipped or not kept:
            return parent
        swaps = min(len(skipped), len(kept), 1 + int(self._random.expovariate(1.0)) % self.max_swaps)
        restore = self._pick(skipped, swaps, important=True)
        drop = self._pick(kept, swaps, important=False)
        return frozenset((set(parent) - set(restore)) | set(drop))

    def _pick(self, units: list[Unit], count: int, important: bool) -> list[Unit]:
        """``count`` distinct units: with probability ``prior_weight`` each draw follows the prior (restore
        important units, drop unimportant ones), otherwise it is uniform, so the search can leave the prior."""
        pool = list(units)
        chosen = []
        for _ in range(count):
            if self.prior is not None and self._random.random() < self.prior_weight:
                scores = [self.prior.of(unit) for unit in pool]
                scale = (max(scores) - min(scores)) or 1.0
                sign = 1.0 if important else -1.0
                weights = [math.exp(sign * (score - min(scores)) / scale / self.temperature * 3.0) for score in scores]
                unit = self._random.choices(pool, weights=weights)[0]
            else:
                unit = self._random.choice(pool)
            pool.remove(unit)
            chosen.append(unit)
        return chosen
