from colasearch.priors import Prior
from colasearch.search.executor import InProcessExecutor
from colasearch.search.loop import run_search
from colasearch.searchers.base import make_searcher


def test_evolution_finds_the_planted_optimum(planted):
    space, evaluator, objective = planted
    searcher = make_searcher("evolution", space, objective, seed=0)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, 40, evaluator=evaluator)
    best_value, best_skips = evaluator.best_skip_set(space)
    assert outcome.best_value == best_value
    assert all(space.meets_target(schedule) for schedule, _ in outcome.records)


def test_evolution_starts_from_the_prior_or_the_init_schedule(planted):
    space, evaluator, objective = planted
    # A prior that is the planted weights themselves: one-shot pruning is then already optimal.
    searcher = make_searcher("evolution", space, objective, seed=0)
    searcher.prior = Prior({unit: evaluator.weights[unit] for unit in space.units})
    first = searcher.ask(1)[0]
    assert evaluator.quality(first) == evaluator.best_skip_set(space)[0]
    other = make_searcher("evolution", space, objective, seed=0)
    init = space.schedule_skipping([(1, "all"), (2, "all")])
    other.init_schedules = (init,)
    assert other.ask(1)[0].key == init.key


def test_every_offspring_keeps_the_parents_cost(planted):
    space, evaluator, objective = planted
    searcher = make_searcher("evolution", space, objective, seed=3)
    searcher.prior = Prior({unit: evaluator.weights[unit] for unit in space.units})
    parent = searcher.ask(1)[0]
    searcher.tell(parent, evaluator.evaluate(parent))
    children = searcher.ask(6)
    assert len(children) == 6 and len({child.key for child in children}) == 6
    assert all(len(child.layers) == len(parent.layers) for child in children)
