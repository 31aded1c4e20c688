"""Multi-fidelity promotion: each proposal races through the evaluator's fidelity levels (nested item subsets).

A race is scored on the first level's items and compared, item by item, with the incumbent of its proposal
time; it moves to the next level until it reaches the full split, unless it is clearly worse
(``racing.clearly_worse``) or the search's budget cannot pay the next level. Evaluations are cached per
(schedule, items): a pair is never evaluated twice, a result read back from the study costs nothing to
compute, and a schedule's items are paid for once whatever level reads them (levels are nested).
"""

from __future__ import annotations

from dataclasses import dataclass

from colasearch.executor import Executor
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.engine.racing import clearly_worse


@dataclass
class Race:
    """One proposal on its way through the fidelity levels."""

    asked: Schedule | None          # what the searcher proposed: it is told under this (None: the loop's start)
    schedule: Schedule              # what is evaluated and recorded (projected onto the target)
    incumbent: EvalResult | None    # the best full-split result when it was proposed (fixed, for determinism)
    level: int
    result: EvalResult | None = None
    done: bool = False
    spent: int = 0                  # items charged for it (0: answered from what was already paid for)


class Races:
    """The races in flight, the evaluations they share, and what each costs.

    ``levels``: the item counts a race passes through, the full split last (only the full split where the
    objective cannot race; none for a stand-in evaluator that does not count items). ``budget`` is charged for
    what is scored (``spend``) and says how far the search may go (``search_limit``); ``outcome`` counts the
    evaluations computed and reused and the schedules stopped early.
    """

    def __init__(self, executor: Executor, objective, levels: tuple[int, ...], metric: str | None, sign: float,
                 z: float, budget, outcome, store=None, full_items: int | None = None):
        self.executor = executor
        self.objective = objective
        self.levels = levels
        self.metric = metric
        self.sign = sign
        self.z = z
        self.budget = budget
        self.outcome = outcome
        self.store = store
        self.full_items = full_items
        self._stored = {self.key(schedule, result): result
                        for schedule, result in (store.records() if store is not None else [])}
        self._cache: dict[tuple, EvalResult] = dict(self._stored)
        self._counted: set[tuple] = set()
        self._scored_items: dict[str, int] = {}   # per schedule, the most items already paid for (chunks are reused)
        self._in_flight: set[tuple] = set()
        self._waiting: dict[tuple, list[Race]] = {}

    # -- levels ---------------------------------------------------------------------------------------

    @property
    def full_level(self) -> int:
        return len(self.levels) - 1

    def items_at(self, level: int) -> int | None:
        return self.levels[level] if self.levels else None

    def reached_full(self, race: Race) -> bool:
        return race.level >= self.full_level

    def key(self, schedule: Schedule, result: EvalResult) -> tuple:
        """The cache key of a result: its schedule and the items it was scored on."""
        return schedule.key, (result.items if result.items is not None else self.full_items)

    def known_in_full(self, schedule: Schedule) -> bool:
        """Whether ``schedule`` is already scored on the full split (it need not race again)."""
        return (schedule.key, self.items_at(self.full_level)) in self._cache

    # -- racing ---------------------------------------------------------------------------------------

    def run(self, race: Race) -> None:
        """Score ``race`` at its level: from the cache where it is there, else by the executor (once per key)."""
        items = self.items_at(race.level)
        key = (race.schedule.key, items)
        if key in self._cache:
            self._receive(race, key)
            return
        self._waiting.setdefault(key, []).append(race)
        if key not in self._in_flight:
            self._in_flight.add(key)
            self.executor.submit(race.schedule, items if self.metric is not None else None)

    def finished(self, schedule: Schedule, result: EvalResult) -> None:
        """A search-split evaluation came back: cache and store it, and hand it to the races waiting on it."""
        key = self.key(schedule, result)
        self._in_flight.discard(key)
        self._cache[key] = result
        self.outcome.computed += 1
        if self.store is not None:
            self.store.add(schedule, result, self.objective.values(result), self.objective.feasible(result))
        for race in self._waiting.pop(key, []):
            self._receive(race, key)

    def _receive(self, race: Race, key: tuple) -> None:
        if key not in self._counted:
            self._counted.add(key)
            if key in self._stored:
                self.outcome.reused += 1
            items = key[1] if key[1] is not None else 1
            paid = self._scored_items.get(race.schedule.key, 0)
            race.spent += max(0, items - paid)
            self.budget.spend(max(0, items - paid))
            self._scored_items[race.schedule.key] = max(paid, items)
        race.result = self._cache[key]
        self._advance(race)

    def _advance(self, race: Race) -> None:
        """Promote ``race`` to the next level, or end it: at the full split, with nothing to race against, when
        infeasible, when clearly worse than its incumbent, or when the budget left cannot pay the next level."""
        if self.reached_full(race) or race.incumbent is None or not self.objective.feasible(race.result):
            race.done = True
            return
        next_items = self.items_at(race.level + 1)
        if clearly_worse(race.result, race.incumbent, self.metric, self.sign, self.z) or \
                self.outcome.items_spent + next_items - (race.result.items or 0) > self.budget.search_limit:
            self.outcome.stopped.add(race.schedule.key)
            race.done = True
            return
        race.level += 1
        self.run(race)
