"""Every searcher on a planted objective whose best schedule is known by brute force."""

import pytest

from colasearch.search import InProcessExecutor, run_search
from colasearch.searchers.base import make_searcher
from colasearch.searchers.frontier import FrontierSearcher


def _search(name, space, evaluator, objective, budget, seed=0, **options):
    searcher = make_searcher(name, space, objective, seed=seed, budget=budget, **options)
    return run_search(searcher, InProcessExecutor(evaluator), objective, budget, evaluator=evaluator)


def _skipped_layers(schedule, num_layers):
    return {(layer, "all") for layer in range(num_layers)} - {(entry.layer, "all") for entry in schedule.layers}


@pytest.mark.parametrize("name", ["mcts", "optuna", "rl", "random"])
def test_whole_layer_searchers_find_the_planted_optimum(name, planted):
    space, evaluator, objective = planted
    best_value, best_skipped = evaluator.best_skip_set(space)
    outcome = _search(name, space, evaluator, objective, budget=30)
    assert outcome.evaluations <= 30
    assert objective.feasible(outcome.best_result)
    assert outcome.best_value == pytest.approx(best_value)
    assert _skipped_layers(outcome.best, 8) == set(best_skipped)


@pytest.mark.parametrize("name", ["mcts", "rl"])
def test_sub_block_searchers_find_the_planted_optimum(name, planted_sub_blocks):
    space, evaluator, objective = planted_sub_blocks
    best_value, _ = evaluator.best_skip_set(space)
    outcome = _search(name, space, evaluator, objective, budget=40)
    assert outcome.best_value == pytest.approx(best_value)


def test_frontier_walk_finds_the_optimum_of_a_monotone_planted_objective(planted_sub_blocks):
    space, evaluator, objective = planted_sub_blocks
    best_value, _ = evaluator.best_skip_set(space)
    # With knob orders that follow the planted weights, every optimum is a prefix of each order.
    orders = {run: sorted((unit for unit in space.units if unit[1] == run), key=lambda unit: evaluator.weights[unit])
              for run in ("attn", "mlp")}
    searcher = FrontierSearcher(space, objective, budget=40, orders=orders)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, 40)
    assert outcome.best_value == pytest.approx(best_value)
    grid = (len(orders["attn"]) + 1) * (len(orders["mlp"]) + 1)
    assert outcome.evaluations < grid / 2  # a walk, not the grid


def test_frontier_measures_its_importance_order_once(planted_sub_blocks):
    space, evaluator, objective = planted_sub_blocks
    searcher = FrontierSearcher(space, objective, budget=10)
    searcher.prepare(evaluator)
    assert [len(knob.steps) for knob in searcher.knobs] == [6, 6]
    assert {unit[1] for unit in searcher.knobs[0].steps} == {"attn"}
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, 10, evaluator=evaluator)
    assert outcome.evaluations >= 2 and outcome.best is not None


@pytest.mark.parametrize("name", ["mcts", "optuna", "rl", "random", "frontier"])
def test_same_seed_same_search(name, planted_sub_blocks):
    space, evaluator, objective = planted_sub_blocks
    runs = [_search(name, space, evaluator, objective, budget=15, seed=3) for _ in range(2)]
    assert [s.key for s, _ in runs[0].records] == [s.key for s, _ in runs[1].records]
    assert runs[0].best.key == runs[1].best.key
