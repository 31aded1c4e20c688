from colasearch.priors import Prior
from colasearch.executor import InProcessExecutor
from colasearch.engine.loop import run_search
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


def test_every_starting_point_is_handed_out_even_one_per_ask(planted):
    space, evaluator, objective = planted
    searcher = make_searcher("evolution", space, objective, seed=0)
    starts = (space.schedule_skipping([(1, "all"), (2, "all")]), space.schedule_skipping([(3, "all"), (4, "all")]))
    searcher.init_schedules = starts
    asked = [searcher.ask(1)[0] for _ in range(2)]
    assert [schedule.key for schedule in asked] == [schedule.key for schedule in starts]


def test_with_sub_blocks_whole_layer_pruning_is_the_first_start(planted_sub_blocks):
    space, evaluator, objective = planted_sub_blocks
    searcher = make_searcher("evolution", space, objective, seed=0)
    # Attention blocks look unimportant one by one, so importance alone drops attention everywhere.
    searcher.prior = Prior({(layer, run): (0.1 if run == "attn" else 1.0 + layer) for layer, run in space.units})
    whole_layer, by_sub_block = searcher.ask(2)
    # Whole-layer pruning first: the final choice keeps the first proposal unless a candidate clearly beats it.
    whole_layers = [entry for entry in whole_layer.layers if entry.run == "all"]
    assert len(whole_layers) >= len(whole_layer.layers) - 1  # at most the last unit taken is half a layer
    assert len({entry.layer for entry in whole_layer.layers}) < space.num_layers
    assert all(entry.run == "mlp" for entry in by_sub_block.layers if entry.run != "all")
    assert space.meets_target(whole_layer) and space.meets_target(by_sub_block)
