from importlib.metadata import EntryPoint

import pytest

import colasearch.registry as registry
import colasearch.searchers.base as base
from colasearch.errors import ColasearchError
from colasearch.schedule import LayerEntry
from colasearch.searchers.base import SEARCHERS, BaseSearcher, SearcherError, SearchSpace, make_searcher
from colasearch.searchers.random_search import RandomSearcher

BUILTIN = {"mcts", "optuna", "rl", "frontier", "unified", "greedy", "random"}


def test_registry_lists_and_builds_the_builtin_searchers(planted):
    space, _, objective = planted
    assert BUILTIN <= set(SEARCHERS.names())
    for name in BUILTIN:
        searcher = make_searcher(name, space, objective, seed=0)
        assert isinstance(searcher, BaseSearcher) and searcher.name == name


def test_unknown_searcher_is_a_clear_user_error(planted):
    space, _, objective = planted
    with pytest.raises(ColasearchError, match="unknown searcher 'nope'.*mcts"):
        make_searcher("nope", space, objective)


def test_the_budget_belongs_to_the_run_loop_and_no_searcher_takes_one(planted):
    """A searcher that sized itself by the budget would propose differently when resumed or raced."""
    space, _, objective = planted
    for name in SEARCHERS.builtin_names():
        with pytest.raises(SearcherError, match="unknown options: budget"):
            make_searcher(name, space, objective, seed=0, budget=5)


def test_unknown_option_is_refused(planted):
    space, _, objective = planted
    with pytest.raises(SearcherError, match="unknown options: colour"):
        make_searcher("random", space, objective, colour="red")


def test_third_party_searchers_come_from_entry_points(monkeypatch, planted):
    space, _, objective = planted
    point = EntryPoint(name="plugin-random", value="colasearch.searchers.random_search:RandomSearcher",
                       group=base.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [point] if group == base.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(base, "SEARCHERS", registry.Registry("searcher", base.ENTRY_POINT_GROUP,
                                                             {"random": "colasearch.searchers.random_search:RandomSearcher"}))
    assert "plugin-random" in base.SEARCHERS.names()
    assert isinstance(base.make_searcher("plugin-random", space, objective), RandomSearcher)


def test_space_refuses_an_impossible_target(tiny8):
    space = SearchSpace.for_model(tiny8, target_speedup=50.0)
    with pytest.raises(ColasearchError, match="target speedup 50 is impossible"):
        space.check_target()
    SearchSpace.for_model(tiny8, target_speedup=1.25).check_target()


def test_space_is_frozen_and_validated(tiny8):
    space = SearchSpace.for_model(tiny8)
    with pytest.raises(Exception):
        space.target_speedup = 2.0
    with pytest.raises(Exception):
        SearchSpace(num_layers=3, cost_model=space.cost_model)


def test_units_and_chains(tiny8):
    space = SearchSpace.for_model(tiny8, sub_blocks=True, keep_first=2, keep_last=1)
    assert space.units[0] == (2, "attn") and space.units[-1] == (6, "mlp") and len(space.units) == 10
    chain = space.chain_skipping([(3, "attn"), (4, "attn"), (4, "mlp")], repeated=[5])
    assert [str(entry) for entry in chain] == ["0", "1", "2", "3m", "5", "5", "6", "7"]
    assert space.speedup(chain) > 1.0
    full = space.full_chain()
    assert full == tuple(LayerEntry(layer=layer) for layer in range(8)) and space.speedup(full) == pytest.approx(1.0)


def test_one_shot_starts_put_whole_layer_pruning_first(tiny8):
    from colasearch.priors import Prior

    # Attention blocks look unimportant one by one; whole layers rank by their two sub-blocks together.
    space = SearchSpace.for_model(tiny8, target_speedup=1.25, sub_blocks=True)
    prior = Prior({(layer, run): (0.1 if run == "attn" else 1.0 + layer) for layer, run in space.units})
    whole_layers, by_unit = space.one_shot_starts(prior)
    assert whole_layers == frozenset(space.skips_until_target(
        [(layer, run) for layer in sorted({layer for layer, _ in space.units}) for run in ("attn", "mlp")]))
    assert by_unit == frozenset(space.skips_until_target(prior.order))
    assert {run for _, run in by_unit} == {"attn"}
    # A layer's own importance, where the prior has it, ranks whole layers; its blocks' sum does not.
    own = Prior(prior.importance, layers={layer: -float(layer) for layer, _ in space.units})
    last_first = sorted({layer for layer, _ in space.units}, reverse=True)
    assert space.one_shot_starts(own)[0] == frozenset(space.skips_until_target(
        [(layer, run) for layer in last_first for run in ("attn", "mlp")]))
    # In a whole-layer space the two answers are one.
    layer_space = SearchSpace.for_model(tiny8, target_speedup=1.25)
    layer_prior = Prior({unit: float(unit[0]) for unit in layer_space.units})
    assert layer_space.one_shot_starts(layer_prior) == [frozenset(layer_space.skips_until_target(layer_prior.order))]
    # Without a prior: the costliest units first, one start.
    assert len(space.one_shot_starts(None)) == 1 and space.meets_target(space.schedule_skipping(
        space.one_shot_starts(None)[0]))
