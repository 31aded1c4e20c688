import pytest
import torch

from colasearch.engine import InProcessExecutor, run_search
from colasearch.engine.testing import PlantedEvaluator, PlantedObjective
from colasearch.searchers.base import SearcherError, SearchSpace, make_searcher
from colasearch.searchers.greedy import GreedySearcher
from colasearch.searchers.random_search import RandomSearcher
from colasearch.searchers.unified import UnifiedSearcher
from colasearch.testing import make_tiny_model


def test_unified_skips_evenly_and_keeps_the_ends():
    model = make_tiny_model("llama", num_layers=12)
    space = SearchSpace.for_model(model, target_speedup=1.4)
    schedule = UnifiedSearcher(space, PlantedObjective(1.4)).schedule()
    kept = [entry.layer for entry in schedule.layers]
    skipped = sorted(set(range(12)) - set(kept))
    assert kept[0] == 0 and kept[-1] == 11 and kept == sorted(kept)
    assert space.meets_target(schedule)
    # Minimal: putting any skipped layer back misses the target.
    assert not space.meets_target(space.chain_skipping([(layer, "all") for layer in skipped[1:]]))
    gaps = [b - a for a, b in zip(skipped, skipped[1:])]
    assert min(gaps) >= 2  # spread out, not one block


def _model_with_identity_layers(layers):
    model = make_tiny_model("llama", num_layers=8)
    with torch.no_grad():
        for layer in layers:
            model.model.layers[layer].self_attn.o_proj.weight.zero_()
            model.model.layers[layer].mlp.down_proj.weight.zero_()
    return model


@pytest.mark.parametrize("score", ["block_influence", "finercut"])
def test_greedy_removes_the_layers_that_do_nothing(score):
    model = _model_with_identity_layers([3, 5])
    space = SearchSpace.for_model(model, target_speedup=1.25)
    evaluator = PlantedEvaluator(model, PlantedEvaluator.random_weights(8, seed=0))
    searcher = GreedySearcher(space, PlantedObjective(1.25), score=score)
    outcome = run_search(searcher, InProcessExecutor(evaluator), searcher.objective, 5, evaluator=evaluator)
    assert outcome.evaluations == 1 and searcher.finished
    assert sorted(set(range(8)) - {entry.layer for entry in outcome.best.layers}) == [3, 5]


def test_greedy_sub_block_scores_skip_a_zeroed_mlp_first():
    model = make_tiny_model("llama", num_layers=8)
    with torch.no_grad():
        model.model.layers[4].mlp.down_proj.weight.zero_()
    space = SearchSpace.for_model(model, target_speedup=1.05, sub_blocks=True)
    evaluator = PlantedEvaluator(model, {})
    searcher = GreedySearcher(space, PlantedObjective(1.05))
    searcher.prepare(evaluator)
    assert searcher.order[0] == (4, "mlp")


def test_random_samples_sit_at_the_target_and_never_repeat(planted):
    space, evaluator, objective = planted
    searcher = RandomSearcher(space, objective, seed=0)
    proposals = searcher.ask(10)
    assert len({schedule.key for schedule in proposals}) == 10
    for schedule in proposals:
        assert space.meets_target(schedule)
        layers = {entry.layer for entry in schedule.layers}
        assert not space.meets_target(space.chain_skipping([(l, "all") for l in range(8) if l not in layers][1:]))


def test_greedy_counts_its_calibration_passes_in_prepare_cost():
    model = _model_with_identity_layers([3, 5])
    space = SearchSpace.for_model(model, target_speedup=1.25)
    evaluator = PlantedEvaluator(model, {})
    items = evaluator.calibration_batch(16)[0].shape[0]
    block_influence = GreedySearcher(space, PlantedObjective(1.25))
    block_influence.prepare(evaluator)
    assert block_influence.prepare_cost == items  # one forward pass
    finercut = GreedySearcher(space, PlantedObjective(1.25), score="finercut")
    finercut.prepare(evaluator)
    assert finercut.prepare_cost == (1 + 6 + 5) * items  # reference + candidates at each of two removals


def test_greedy_angular_points_at_gromov():
    model = make_tiny_model("llama", num_layers=8)
    with pytest.raises(SearcherError, match="gromov"):
        GreedySearcher(SearchSpace.for_model(model, target_speedup=1.25), PlantedObjective(1.25), score="angular")


def test_gromov_skips_the_contiguous_block_with_the_smallest_angular_distance():
    # Layers 2 and 5 do nothing: per-layer scores would skip both, Gromov skips one contiguous block.
    model = _model_with_identity_layers([2, 5])
    space = SearchSpace.for_model(model, target_speedup=1.25)
    evaluator = PlantedEvaluator(model, PlantedEvaluator.random_weights(8, seed=0))
    searcher = make_searcher("gromov", space, PlantedObjective(1.25))
    outcome = run_search(searcher, InProcessExecutor(evaluator), searcher.objective, 5, evaluator=evaluator)
    assert outcome.evaluations == 1 and searcher.finished
    start, size = searcher.block
    assert size == 2  # the smallest block that reaches 1.25x on 8 equal layers
    skipped = sorted(set(range(8)) - {entry.layer for entry in outcome.best.layers})
    assert skipped == [start, start + 1]
    allowed = [first for first in range(1, 6)]  # layers 0 and 7 are kept
    assert float(searcher.distances[start, start + 2]) == min(float(searcher.distances[i, i + 2]) for i in allowed)
    assert searcher.prepare_cost == evaluator.calibration_batch(16)[0].shape[0]


def test_gromov_refuses_a_target_no_contiguous_block_reaches():
    model = make_tiny_model("llama", num_layers=8)
    space = SearchSpace.for_model(model, target_speedup=1.25, min_length=7)  # 1.25x needs at most 6 layers
    searcher = make_searcher("gromov", space, PlantedObjective(1.25))
    searcher.distances = torch.zeros(9, 9)
    with pytest.raises(SearcherError, match="no contiguous block"):
        searcher.schedule()



def test_a_baseline_whose_calibration_eats_the_budget_is_still_scored(tiny_llama):
    # Block Influence calibrates on 16 items, the whole search split here: a budget of one evaluation is
    # spent before the loop starts, and the loop must still score the one schedule it found.
    from colasearch.evaluator import Evaluator
    from colasearch.objectives import make_objective
    from colasearch.tasks import load_task
    from colasearch.tasks.char_tokenizer import CharTokenizer

    evaluator = Evaluator.from_options(tiny_llama, CharTokenizer(), load_task("builtin:capitals"), search_size=16,
                                       heldout_size=8)
    space = SearchSpace.for_model(tiny_llama, target_speedup=1.25)
    objective = make_objective("quality", metric="acc", target_speedup=1.25)
    searcher = GreedySearcher(space, objective)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, 1, evaluator=evaluator)
    assert outcome.evaluations == 1 and outcome.best is not None
    assert outcome.prior_items == searcher.prepare_cost == 16
