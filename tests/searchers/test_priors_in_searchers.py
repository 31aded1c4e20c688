"""Searchers that use the run's prior (per-unit importance) and warm-start schedules (``--init``)."""


import pytest

from colasearch.priors import Prior
from colasearch.searchers.base import SearchSpace
from colasearch.searchers.mcts import MCTSSearcher
from colasearch.searchers.optuna_search import OptunaSearcher
from colasearch.searchers.rl import RLSearcher
from colasearch.searchers.warm_start import skipped_units


def _planted_prior(evaluator, space):
    """A prior that knows the planted weights: importance = quality lost by skipping the unit."""
    return Prior({unit: evaluator.weights[unit] for unit in space.units}, cost=0)


def _skipped(schedule, space):
    return set(skipped_units(schedule, space))


# -- MCTS -----------------------------------------------------------------------------------------

def test_mcts_edge_priors_favour_removing_unimportant_units(planted):
    space, evaluator, objective = planted
    searcher = MCTSSearcher(space, objective)
    searcher.prior = _planted_prior(evaluator, space)
    actions = searcher._actions(space.full_chain())
    assert sum(p for _, p in actions) == pytest.approx(1.0)
    single = {next(iter(set(range(8)) - {e.layer for e in child})): p for child, p in actions if len(child) == 7}
    least, most = min(single, key=lambda l: evaluator.weights[(l, "all")]), max(single, key=lambda l: evaluator.weights[(l, "all")])
    assert single[least] > single[most]
    four = [p for child, p in actions if len(child) == 4]
    assert max(four) < single[least]  # a four-layer skip loses more importance than the cheapest single one


def test_mcts_loop_pays_with_the_least_important_units(tiny8, planted):
    _, evaluator, objective = planted
    space = SearchSpace.for_model(tiny8, target_speedup=1.25, repeats=True)
    searcher = MCTSSearcher(space, objective)
    searcher.prior = _planted_prior(evaluator, space)
    at_target = space.chain_skipping([(3, "all"), (4, "all")])
    child, lost = searcher._paid_loop(at_target, 1, 1)  # loop layer 1
    kept = [unit for unit in space.units if unit[0] not in (1, 3, 4)]
    cheapest = min(kept, key=lambda unit: evaluator.weights[unit])
    assert [entry.layer for entry in child].count(1) == 2
    assert cheapest[0] not in {entry.layer for entry in child}
    assert lost == pytest.approx(evaluator.weights[cheapest])
    assert space.meets_target(child)


def test_mcts_root_children_are_diverse(tiny8, planted):
    _, evaluator, objective = planted
    space = SearchSpace.for_model(tiny8, target_speedup=1.25, keep_first=0, keep_last=0)
    searcher = MCTSSearcher(space, objective, seed=0, widening=8)
    searcher.prior = _planted_prior(evaluator, space)
    (root,) = searcher.ask(1)
    searcher.tell(root, evaluator.evaluate(root))
    batch = searcher.ask(8)
    children = [node.chain for node in searcher.root.children]
    assert len(children) == 8
    sizes = {8 - len(child) for child in children}
    assert len(sizes) >= 2  # skips of several sizes, not eight four-layer skips
    completions = {space.project(child, searcher.prior) for child in children}
    assert len(completions) == len(children)  # no two children complete to the same schedule
    assert len({schedule.key for schedule in batch}) == len(batch)


def test_mcts_proposes_warm_starts_right_after_the_root(planted):
    space, evaluator, objective = planted
    start = space.schedule_skipping([(2, "all"), (5, "all")])
    searcher = MCTSSearcher(space, objective)
    searcher.init_schedules = (start,)
    first = searcher.ask(4)
    assert [schedule.key for schedule in first] == [space.schedule(space.full_chain()).key, start.key]
    for schedule in first:
        searcher.tell(schedule, evaluator.evaluate(schedule))
    assert searcher.root.visits == 2 and searcher.root.children[0].chain == tuple(start.layers)


# -- Optuna ---------------------------------------------------------------------------------------

def test_optuna_starts_from_the_greedy_schedule_and_its_one_swap_neighbours(planted):
    space, evaluator, objective = planted
    searcher = OptunaSearcher(space, objective, seed=0, startup_trials=5)
    searcher.prior = _planted_prior(evaluator, space)
    proposals = searcher.ask(5)
    greedy = set(space.skips_until_target(searcher.prior.order))
    assert _skipped(proposals[0], space) == greedy
    for schedule in proposals[1:]:
        skipped = _skipped(schedule, space)
        assert len(skipped ^ greedy) == 2 and len(skipped) == len(greedy)  # one unit swapped
        assert space.meets_target(schedule)
    # The likeliest swaps come first: the smallest loss of prior importance.
    losses = [sum(evaluator.weights[u] for u in _skipped(s, space)) for s in proposals[1:]]
    assert losses == sorted(losses)


def test_optuna_with_sub_blocks_starts_from_whole_layer_pruning(planted_sub_blocks):
    space, evaluator, objective = planted_sub_blocks
    searcher = OptunaSearcher(space, objective, seed=0, startup_trials=4)
    searcher.prior = _planted_prior(evaluator, space)
    starts = space.one_shot_starts(searcher.prior)
    assert len(starts) == 2  # the planted weights make whole-layer and per-unit pruning disagree
    proposals = searcher.ask(len(starts))
    assert [_skipped(schedule, space) for schedule in proposals] == [set(start) for start in starts]


def test_optuna_proposes_warm_starts_first(planted):
    space, evaluator, objective = planted
    start = space.schedule_skipping([(1, "all"), (6, "all")])
    searcher = OptunaSearcher(space, objective, seed=0, startup_trials=3)
    searcher.init_schedules = (start,)
    assert searcher.ask(1)[0].key == start.key


# -- RL -------------------------------------------------------------------------------------------

def test_rl_starts_from_the_prior(planted):
    space, evaluator, objective = planted
    searcher = RLSearcher(space, objective, seed=0)
    searcher.prior = _planted_prior(evaluator, space)
    first = searcher.ask(1)[0]
    by_logit = [searcher.units[i] for i in sorted(range(len(searcher.units)), key=lambda i: -float(searcher.logits[i]))]
    assert by_logit == searcher.prior.order  # least important -> highest skip logit
    assert _skipped(first, space) == set(space.skips_until_target(searcher.prior.order))


def test_rl_proposes_warm_starts_first_and_leans_towards_them(planted):
    space, evaluator, objective = planted
    start = space.schedule_skipping([(1, "all"), (6, "all")])
    searcher = RLSearcher(space, objective, seed=0)
    searcher.init_schedules = (start,)
    first = searcher.ask(2)
    assert first[0].key == start.key
    top = sorted(range(len(searcher.units)), key=lambda i: -float(searcher.logits[i]))[:2]
    assert {searcher.units[i] for i in top} == {(1, "all"), (6, "all")}
    assert searcher.final_schedule().key == start.key  # the mode: not proposed again while it is outstanding


def test_the_search_starts_from_exactly_the_schedule_the_greedy_baseline_returns(tiny8):
    """The prior and ShortGPT's baseline calibrate on the same items, so the final choice, which keeps the start
    unless a candidate clearly beats it, compares against the very schedule the baseline would ship."""
    from colasearch.evaluator import Evaluator
    from colasearch.objectives import make_objective
    from colasearch.priors import compute_prior
    from colasearch.searchers.base import make_searcher
    from colasearch.tasks import load_task
    from colasearch.tasks.char_tokenizer import CharTokenizer

    evaluator = Evaluator.from_options(tiny8, CharTokenizer(), load_task("builtin:capitals"), search_size=48,
                                       heldout_size=4)
    space = SearchSpace.for_model(tiny8, target_speedup=1.3)
    objective = make_objective("quality", metric="acc", target_speedup=1.3)
    baseline = make_searcher("greedy", space, objective)
    baseline.prepare(evaluator)
    search = make_searcher("evolution", space, objective)
    search.prior = compute_prior(evaluator, space)
    assert search.ask(1)[0].key == baseline.schedule().key

    # In a sub-block space too: the first start drops the baseline's layers, by each layer's own importance (not
    # its two blocks' together); at most the last layer keeps its MLP, where half a layer already meets the target.
    sub_blocks = SearchSpace.for_model(tiny8, target_speedup=1.3, sub_blocks=True)
    search = make_searcher("evolution", sub_blocks, objective)
    search.prior = compute_prior(evaluator, sub_blocks)
    first = search.ask(1)[0]
    dropped = set(range(8)) - {entry.layer for entry in baseline.schedule().layers}
    halved = {entry.layer for entry in first.layers if entry.run != "all"}
    assert {entry.layer for entry in first.layers if entry.run == "all"} == set(range(8)) - dropped - halved
    assert len([entry for entry in first.layers if entry.run != "all"]) <= 1
    assert {entry.layer for entry in first.layers if entry.run != "all"} <= dropped
    # The whole-layer importances travel with the prior, so a resumed run starts from the same schedule.
    assert Prior.from_dict(search.prior.to_dict()) == search.prior and search.prior.layers is not None


@pytest.mark.parametrize("name", ["evolution", "optuna", "mcts", "rl", "frontier"])
def test_every_searcher_is_scored_first_on_whole_layer_pruning_in_a_sub_block_space(tiny8, name):
    """The run loop, not each searcher, evaluates the one-shot start first: in a sub-block space MCTS's first
    rollout and RL's first sample follow the per-unit order, which the final choice must not protect."""
    from colasearch.evaluator import Evaluator
    from colasearch.objectives import make_objective
    from colasearch.engine import InProcessExecutor, run_search
    from colasearch.searchers.base import make_searcher
    from colasearch.tasks import load_task
    from colasearch.tasks.char_tokenizer import CharTokenizer

    evaluator = Evaluator.from_options(tiny8, CharTokenizer(), load_task("builtin:capitals"), search_size=16,
                                       heldout_size=4)
    objective = make_objective("quality", metric="acc", target_speedup=1.3)
    baseline = make_searcher("greedy", SearchSpace.for_model(tiny8, target_speedup=1.3), objective)
    baseline.prepare(evaluator)
    dropped = set(range(8)) - {entry.layer for entry in baseline.schedule().layers}
    space = SearchSpace.for_model(tiny8, target_speedup=1.3, sub_blocks=True)
    searcher = make_searcher(name, space, objective, seed=0)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, 3, evaluator=evaluator)
    first = outcome.records[0][0]
    assert first.key == outcome.start.key
    # Protected as one-shot pruning gives it: not projected, so not made slower by restoring units.
    assert first.key == space.schedule_skipping(space.one_shot_starts(searcher.prior)[0]).key
    assert not outcome.records[0][1].estimated  # scored on the full split: the reference
    # The baseline's layers are gone, whole or (the last one, where half a layer meets the target) half.
    assert {entry.layer for entry in first.layers} | dropped == set(range(8))
    assert {entry.layer for entry in first.layers if entry.run != "all"} <= dropped
