import pytest

from colasearch.search.testing import PlantedEvaluator, PlantedObjective
from colasearch.searchers.base import SearchSpace
from colasearch.testing import make_tiny_model

TARGET = 1.25


@pytest.fixture(scope="module")
def tiny8():
    return make_tiny_model("llama", num_layers=8)


@pytest.fixture
def planted(tiny8):
    """(space, evaluator, objective) of a whole-layer planted problem on an 8-layer tiny model."""
    space = SearchSpace.for_model(tiny8, target_speedup=TARGET)
    evaluator = PlantedEvaluator(tiny8, PlantedEvaluator.random_weights(8, seed=1))
    return space, evaluator, PlantedObjective(TARGET)


@pytest.fixture
def planted_sub_blocks(tiny8):
    space = SearchSpace.for_model(tiny8, target_speedup=TARGET, sub_blocks=True)
    evaluator = PlantedEvaluator(tiny8, PlantedEvaluator.random_weights(8, seed=1, sub_blocks=True))
    return space, evaluator, PlantedObjective(TARGET)
