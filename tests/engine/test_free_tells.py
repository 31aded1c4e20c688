"""The loop stops a searcher that only re-proposes what is known, and only such a one."""

from colasearch.engine import InProcessExecutor, run_search
from colasearch.engine.testing import PlantedEvaluator, PlantedObjective
from colasearch.searchers.base import SearchSpace

from tests.engine.test_racing_loop import ScriptedSearcher


def _run(tiny8, chains, budget=6, max_free_tells=2):
    space = SearchSpace.for_model(tiny8, target_speedup=1.0)
    evaluator = PlantedEvaluator(tiny8, PlantedEvaluator.random_weights(8, seed=1))
    objective = PlantedObjective(1.0)
    searcher = ScriptedSearcher(space, objective, chains, seed=0)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, budget=budget, project=False,
                         max_free_tells=max_free_tells)
    return outcome, searcher


def test_proposals_that_each_cost_an_evaluation_run_to_the_budget(tiny8):
    outcome, searcher = _run(tiny8, [[(layer, "all")] for layer in range(1, 7)])
    assert outcome.evaluations == 6 == len(searcher.told) and outcome.items_spent == 6


def test_a_searcher_that_only_repeats_itself_stops_after_a_run_of_free_answers(tiny8):
    outcome, searcher = _run(tiny8, [[(1, "all")]] * 10)
    # The first answer is paid; the next three are free, and the third free one over the limit of two stops it.
    assert outcome.evaluations == 1 and outcome.items_spent == 1 and len(searcher.told) == 4
