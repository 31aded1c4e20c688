"""Multi-fidelity promotion on its own: levels, the shared evaluation cache, and what each race costs."""

from colasearch.executor import InProcessExecutor
from colasearch.objectives import make_objective
from colasearch.engine.loop import SearchOutcome
from colasearch.engine.races import Race, Races
from colasearch.engine.testing import PerItemPlantedEvaluator
from colasearch.searchers.base import SearchSpace

LEVELS = (4, 8, 16, 32)


class Budget:
    """Spends into the outcome; the search may spend up to ``limit``."""

    def __init__(self, outcome, limit=10_000):
        self.outcome = outcome
        self.search_limit = limit

    def spend(self, items):
        self.outcome.items_spent += items


class CountingExecutor(InProcessExecutor):
    def __init__(self, evaluator):
        super().__init__(evaluator)
        self.submitted = []

    def submit(self, schedule, items=None, split=None):
        self.submitted.append((schedule.key, items))
        super().submit(schedule, items, split)


def _setup(tiny8, limit=10_000, store=None):
    weights = {(layer, "all"): 0.02 for layer in range(8)}
    weights[(3, "all")] = 0.5   # skipping layer 3 loses most items
    space = SearchSpace.for_model(tiny8, target_speedup=1.0)
    evaluator = PerItemPlantedEvaluator(tiny8, weights, items=32)
    executor = CountingExecutor(evaluator)
    outcome = SearchOutcome(items_per_evaluation=32)
    races = Races(executor, make_objective("quality", metric="acc"), LEVELS, "acc", 1.0, 1.0, Budget(outcome, limit),
                  outcome, store, full_items=32)
    return space, races, executor, outcome


def _drain(races, executor):
    while executor.pending():
        races.finished(*executor.next_finished())


def _full_split_result(space, races, executor, units):
    race = Race(None, space.schedule_skipping(units), None, races.full_level)
    races.run(race)
    _drain(races, executor)
    return race


def test_a_race_without_an_incumbent_ends_on_the_level_it_starts_on(tiny8):
    space, races, executor, outcome = _setup(tiny8)
    race = _full_split_result(space, races, executor, [(1, "all")])
    assert race.done and race.result.items == 32 and executor.submitted == [(race.schedule.key, 32)]
    assert outcome.items_spent == 32 and outcome.computed == 1 and races.known_in_full(race.schedule)


def test_a_close_race_is_promoted_level_by_level_and_pays_each_item_once(tiny8):
    space, races, executor, outcome = _setup(tiny8)
    incumbent = _full_split_result(space, races, executor, [(1, "all")]).result
    race = Race(None, space.schedule_skipping([(2, "all")]), incumbent, 0)
    races.run(race)
    _drain(races, executor)
    assert race.done and races.reached_full(race) and race.result.items == 32
    assert [items for key, items in executor.submitted if key == race.schedule.key] == list(LEVELS)
    # The levels are nested: 4, then 4 more, 8 more, 16 more items, 32 in all.
    assert outcome.items_spent == 32 + 32 and not outcome.stopped


def test_a_clearly_worse_race_stops_on_the_first_level(tiny8):
    space, races, executor, outcome = _setup(tiny8)
    incumbent = _full_split_result(space, races, executor, [(1, "all")]).result
    race = Race(None, space.schedule_skipping([(3, "all")]), incumbent, 0)
    races.run(race)
    _drain(races, executor)
    assert race.done and race.level == 0 and outcome.stopped == {race.schedule.key}
    assert outcome.items_spent == 32 + 4


def test_a_race_the_budget_cannot_promote_stops_where_it_is(tiny8):
    space, races, executor, outcome = _setup(tiny8, limit=32 + 4 + 2)
    incumbent = _full_split_result(space, races, executor, [(1, "all")]).result
    race = Race(None, space.schedule_skipping([(2, "all")]), incumbent, 0)
    races.run(race)
    _drain(races, executor)
    assert race.done and race.level == 0 and race.schedule.key in outcome.stopped


def test_races_for_the_same_schedule_share_one_evaluation(tiny8):
    space, races, executor, outcome = _setup(tiny8)
    schedule = space.schedule_skipping([(1, "all")])
    first, second = Race(None, schedule, None, races.full_level), Race(None, schedule, None, races.full_level)
    races.run(first)
    races.run(second)
    _drain(races, executor)
    third = Race(None, schedule, None, races.full_level)
    races.run(third)   # answered from the cache at once
    assert first.result is second.result is third.result and third.done
    assert executor.submitted == [(schedule.key, 32)] and outcome.computed == 1 and outcome.items_spent == 32


def test_a_stored_result_is_reused_and_counted_once(tiny8):
    space, races, executor, outcome = _setup(tiny8)
    schedule = space.schedule_skipping([(1, "all")])
    scored = _full_split_result(space, races, executor, [(1, "all")]).result

    class Store:
        def records(self):
            return [(schedule, scored)]

    _, again, executor_again, outcome_again = _setup(tiny8, store=Store())
    race = Race(None, schedule, None, again.full_level)
    again.run(race)
    again.run(Race(None, schedule, None, again.full_level))
    assert race.done and executor_again.submitted == []
    assert outcome_again.reused == 1 and outcome_again.computed == 0 and outcome_again.items_spent == 32
