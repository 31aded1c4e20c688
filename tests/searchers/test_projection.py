"""Every proposal is moved onto the target cost before it is evaluated (SearchSpace.project)."""

import pytest

from colasearch.priors import Prior
from colasearch.schedule import LayerEntry
from colasearch.searchers.base import SearchSpace
from colasearch.testing import make_tiny_model


@pytest.fixture(scope="module")
def model():
    return make_tiny_model("llama", num_layers=8)


def prior_for(space, importance):
    return Prior({unit: float(importance(unit)) for unit in space.units})


def dropped(space, chain):
    return space._dropped_units(list(chain))


def assert_on_target(space, chain):
    assert space.meets_target(chain)
    # Nothing projection may restore could come back without missing the target: nothing is skipped past it.
    for unit in space._restorable_units(list(chain)):
        assert not space.meets_target(tuple(space._with_unit(list(chain), unit)))


@pytest.mark.parametrize("sub_blocks", [False, True])
def test_a_slow_chain_loses_its_least_important_units(model, sub_blocks):
    space = SearchSpace.for_model(model, target_speedup=1.3, sub_blocks=sub_blocks)
    prior = prior_for(space, lambda unit: unit[0])            # earlier layers matter less
    chain = space.project(space.full_chain(), prior)
    assert_on_target(space, chain)
    assert {entry.layer for entry in chain} >= space.protected_layers
    lost = {layer for layer, _ in dropped(space, chain)}
    assert min(lost) == 1 and max(lost) < 5


def test_an_over_skipped_chain_gets_its_most_important_units_back(model):
    space = SearchSpace.for_model(model, target_speedup=1.3)
    prior = prior_for(space, lambda unit: unit[0])
    bare = (LayerEntry(layer=0), LayerEntry(layer=7))
    chain = space.project(bare, prior)
    assert_on_target(space, chain)
    assert [entry.layer for entry in chain] == sorted(entry.layer for entry in chain)
    assert {6, 5} <= {entry.layer for entry in chain}


def test_a_loop_of_an_important_layer_survives_where_a_less_important_layer_goes(model):
    space = SearchSpace.for_model(model, target_speedup=1.1, repeats=True)
    looped = space.full_chain()[:4] + (LayerEntry(layer=3),) + space.full_chain()[4:]
    chain = space.project(looped, prior_for(space, lambda unit: 5.0 if unit[0] == 3 else 1.0))
    assert [entry.layer for entry in chain].count(3) == 2 and space.meets_target(chain)
    assert len(chain) < len(looped)


def test_a_chain_on_target_is_left_alone(model):
    space = SearchSpace.for_model(model, target_speedup=1.3)
    prior = prior_for(space, lambda unit: -unit[0])
    chain = space.project(space.full_chain(), prior)
    assert space.project(chain, prior) == chain
    assert space.project(chain, None) != () and space.meets_target(space.project(space.full_chain(), None))


def without(space, skipped):
    return space.chain_skipping(skipped)


def test_a_sub_block_comes_back_only_beside_its_sibling(model):
    # Attention blocks are cheap (0.04 of the cost here against 0.08 for an MLP) and, per the prior, far more
    # important per cost, so restoring by value alone would put back layer 3's and 4's attention, each alone
    # inside the skipped span. Projection completes layer 5 instead.
    space = SearchSpace.for_model(model, target_speedup=1.3, sub_blocks=True)
    prior = prior_for(space, lambda unit: 10.0 if unit[1] == "attn" else 1.0)
    over_skipped = without(space, [(3, "attn"), (3, "mlp"), (4, "attn"), (4, "mlp"), (5, "mlp")])
    chain = space.project(over_skipped, prior)
    assert_on_target(space, chain)
    assert LayerEntry(layer=5) in chain
    assert not {3, 4} & {entry.layer for entry in chain}


def test_a_wholly_dropped_layer_comes_back_whole(model):
    space = SearchSpace.for_model(model, target_speedup=1.3, sub_blocks=True)
    prior = prior_for(space, lambda unit: 10.0 + unit[0] if unit[1] == "attn" else 1.0)
    over_skipped = without(space, [(layer, run) for layer in (3, 4, 5) for run in ("attn", "mlp")])
    chain = space.project(over_skipped, prior)
    assert_on_target(space, chain)
    assert LayerEntry(layer=5) in chain                      # the most important of the three, both blocks
    assert all(entry.run == "all" for entry in chain)


def test_a_lone_sub_block_the_searcher_chose_is_kept(model):
    space = SearchSpace.for_model(model, target_speedup=1.3, sub_blocks=True)
    prior = prior_for(space, lambda unit: 1.0)
    chosen = without(space, [(3, "mlp"), (4, "mlp"), (5, "mlp")])  # layers 3-5 run their attention alone
    assert space.meets_target(chosen)
    assert space.project(chosen, prior) == chosen
