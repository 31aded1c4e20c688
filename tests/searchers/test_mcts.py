import math

import pytest

from colasearch.results import EvalResult
from colasearch.searchers.base import SearchSpace
from colasearch.searchers.mcts import MCTSSearcher


def _result(evaluator, schedule):
    return evaluator.evaluate(schedule)


def test_root_is_the_full_model_and_is_evaluated_first(planted):
    space, evaluator, objective = planted
    searcher = MCTSSearcher(space, objective)
    first = searcher.ask(4)
    assert len(first) == 1 and first[0].layers == space.full_chain()
    assert searcher.ask(4) == []  # nothing to expand before the root has a reward


def test_virtual_loss_gives_distinct_leaves_in_one_batch(planted):
    space, evaluator, objective = planted
    searcher = MCTSSearcher(space, objective, seed=0)
    (root,) = searcher.ask(1)
    searcher.tell(root, _result(evaluator, root))
    for _ in range(3):
        batch = searcher.ask(4)
        assert len(batch) == 4
        assert len({schedule.key for schedule in batch}) == 4
        for schedule in batch:
            searcher.tell(schedule, _result(evaluator, schedule))


def test_below_the_target_edges_skip_blocks_of_one_to_four(tiny8):
    space = SearchSpace.for_model(tiny8, target_speedup=1.25, repeats=True, keep_first=0, keep_last=0)
    searcher = MCTSSearcher(space, None, max_block=4)
    children = [child for child, _ in searcher._actions(space.full_chain())]
    assert {len(child) for child in children} == {4, 5, 6, 7}  # blocks of 1-4 removed
    assert len(children) == 8 + 7 + 6 + 5  # one per block start


def test_at_the_target_edges_loop_segments_that_pay_for_themselves(tiny8):
    space = SearchSpace.for_model(tiny8, target_speedup=1.25, repeats=True)
    searcher = MCTSSearcher(space, None)
    at_target = space.chain_skipping([(3, "all"), (4, "all")])
    children = [child for child, _ in searcher._actions(at_target, terminal=True)]
    assert children
    for child in children:
        layers = [entry.layer for entry in child]
        assert len(layers) > len(set(layers))  # a segment runs twice
        assert space.meets_target(child)  # and the loop is paid for: the projection leaves it alone
        assert space.project(child) == child
    loops = {tuple(entry.layer for entry in child) for child in children}
    assert any(loop.count(1) == 2 for loop in loops) and any(loop.count(6) == 2 for loop in loops)
    no_repeats = MCTSSearcher(SearchSpace.for_model(tiny8, target_speedup=1.25), None)
    assert no_repeats._actions(at_target, terminal=True) == []  # nothing left but skips, which only cost


def test_chain_length_bounds_are_respected(tiny8, planted):
    _, evaluator, objective = planted
    space = SearchSpace.for_model(tiny8, target_speedup=1.25, min_length=6)
    searcher = MCTSSearcher(space, objective, seed=1)
    for _ in range(25):
        batch = searcher.ask(1)
        if not batch:
            break
        assert all(len(schedule.layers) >= 6 for schedule in batch)
        searcher.tell(batch[0], _result(evaluator, batch[0]))


def test_exhausts_a_small_tree_and_finishes(tiny8, planted):
    _, evaluator, objective = planted
    space = SearchSpace.for_model(tiny8, target_speedup=1.1, keep_first=3, keep_last=3)  # two skippable layers
    searcher = MCTSSearcher(space, objective, widening=10)
    seen = set()
    for _ in range(20):
        batch = searcher.ask(2)
        for schedule in batch:
            assert schedule.key not in seen
            seen.add(schedule.key)
            searcher.tell(schedule, _result(evaluator, schedule))
        if searcher.finished:
            break
    assert searcher.finished
    assert len(seen) == 4  # root, skip 3, skip 4, skip 3+4


def test_oracle_mode_is_labelled_and_needs_per_item_results(planted):
    space, evaluator, objective = planted
    searcher = MCTSSearcher(space, objective, oracle=True)
    (root,) = searcher.ask(1)
    # Per-item values come per metric, as the evaluator reports them; the oracle reads the objective's metric.
    per_item = EvalResult("a", "t", "search", {"acc": 0.5}, 1.0,
                          per_item={"acc": [1, 0, 0, 1], "prob": [0.9, 0.1, 0.2, 0.8]})
    searcher.tell(root, per_item)
    (child,) = searcher.ask(1)
    searcher.tell(child, EvalResult("b", "t", "search", {"acc": 0.5}, 1.3,
                                    per_item={"acc": [0, 1, 0, 0], "prob": [0.1, 0.9, 0.3, 0.2]}))
    report = searcher.oracle_report()
    assert report["label"] == "oracle" and report["items"] == 4 and report["quality"] == pytest.approx(0.75)
    with pytest.raises(Exception, match="oracle=True"):
        MCTSSearcher(space, objective).oracle_report()


def test_cost_penalty_ranks_unfinished_chains_below_the_target(planted):
    space, evaluator, objective = planted
    searcher = MCTSSearcher(space, objective, cost_penalty=1.0)
    (root,) = searcher.ask(1)
    searcher.tell(root, _result(evaluator, root))
    assert searcher.root.reward == pytest.approx(1.0 - 1.0)  # full quality, whole saving still missing
    assert math.isfinite(searcher.root.mean)


def test_the_oracle_keeps_each_items_lowest_value_of_a_metric_to_minimize(planted):
    from colasearch.objectives import make_objective

    space, _, _ = planted
    searcher = MCTSSearcher(space, make_objective("quality", metric="kl", direction="minimize"), oracle=True)
    for key, values in (("a", [0.1, 0.5]), ("b", [0.3, 0.2])):
        (schedule,) = searcher.ask(1)
        searcher.tell(schedule, EvalResult(key, "t", "search", {"kl": sum(values) / 2}, 1.0, per_item={"kl": values}))
    assert searcher.oracle_report()["quality"] == pytest.approx(0.15)
