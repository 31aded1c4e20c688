"""Racing inside the run loop, on a planted problem whose results come item by item."""

from colasearch.objectives import make_objective
from colasearch.engine import InProcessExecutor, run_search
from colasearch.engine.testing import PerItemPlantedEvaluator
from colasearch.searchers.base import BaseSearcher, SearchSpace


class ScriptedSearcher(BaseSearcher):
    """Proposes a fixed list of chains, one at a time, and remembers what it was told."""

    name = "scripted"

    def __init__(self, space, objective, chains, **options):
        super().__init__(space, objective, **options)
        self.chains = list(chains)
        self.told = []

    def ask(self, n=1):
        return [self.space.schedule(self.space.chain_skipping(self.chains.pop(0)))] if self.chains else []

    def tell(self, schedule, result):
        self.told.append((schedule.key, result.estimated))

    @property
    def finished(self):
        return not self.chains


def _setup(tiny8):
    weights = {(layer, "all"): 0.02 for layer in range(8)}
    weights[(3, "all")] = 0.5  # skipping layer 3 loses most items
    space = SearchSpace.for_model(tiny8, target_speedup=1.0)
    return space, PerItemPlantedEvaluator(tiny8, weights, items=32), make_objective("quality", metric="acc")


def test_a_clearly_worse_candidate_stops_on_a_subset_and_is_counted_once(tiny8):
    space, evaluator, objective = _setup(tiny8)
    good, bad = [(1, "all")], [(3, "all")]
    searcher = ScriptedSearcher(space, objective, [good, bad, bad], seed=0)
    searcher.init_schedules = (space.schedule_skipping(good),)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, budget=10, evaluator=evaluator,
                         project=False)
    # The start (``--init``, proposed again first) runs on the full split once; the bad one stops on the
    # first level, the repeat is free.
    assert [items for items in (result.items for _, result in outcome.records)] == [32, 4]
    assert outcome.stopped_early == 1 and outcome.computed == 2
    assert [estimated for _, estimated in searcher.told] == [False, True, True]
    # Compute is counted in items: the prior's calibration pass, one full split and one first level.
    assert outcome.items_spent == outcome.prior_items + 32 + 4 and outcome.best.key == outcome.records[0][0].key


def test_the_loop_evaluates_the_one_shot_start_first_whatever_the_searcher_proposes(tiny8):
    space, evaluator, objective = _setup(tiny8)
    space = space.model_copy(update={"target_speedup": 1.1})
    bad = [(3, "all")]
    searcher = ScriptedSearcher(space, objective, [bad], seed=0)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, budget=10, evaluator=evaluator,
                         project=False)
    start = space.schedule_skipping(space.one_shot_starts(searcher.prior)[0])
    assert bad[0] not in space.one_shot_starts(searcher.prior)[0]
    # The start is scored on the full split before the searcher's proposal, and it is not told to the
    # searcher (it did not ask for it): the proposal races against it and stops on a subset.
    assert outcome.start.key == start.key == outcome.records[0][0].key
    assert outcome.records[0][1].items == 32 and outcome.records[1][1].items == 4
    assert searcher.told == [(space.schedule_skipping(bad).key, True)]
    assert outcome.best.key == start.key


def test_the_start_is_protected_as_given_and_projected_only_where_it_misses_the_target(tiny8):
    space, evaluator, objective = _setup(tiny8)
    space = space.model_copy(update={"target_speedup": 1.1})
    # Faster than needed (three layers skipped where one meets 1.1x): projection would restore two of them.
    fast_units = [(1, "all"), (2, "all"), (4, "all")]
    fast = space.schedule_skipping(fast_units)
    searcher = ScriptedSearcher(space, objective, [fast_units], seed=0)
    searcher.init_schedules = (fast,)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, budget=4, evaluator=evaluator)
    assert outcome.start.key == fast.key == outcome.records[0][0].key
    # Proposed again, the start is taken as it is too: the searcher is told its full-split result, for free.
    assert searcher.told == [(fast.key, False)] and len(outcome.records) == 1 and outcome.computed == 1
    # Too slow (nothing skipped): moved onto the target, since a schedule off it cannot be chosen.
    searcher = ScriptedSearcher(space, objective, [[(5, "all")]], seed=0)
    searcher.init_schedules = (space.schedule(space.full_chain()),)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, budget=4, evaluator=evaluator)
    assert space.meets_target(outcome.start) and len(outcome.start.layers) < 8
