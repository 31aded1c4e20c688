import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

from colasearch.testing import TINY_FAMILIES, make_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """External benchmark data (ARC-Easy, PIQA, HellaSwag, WikiText-2), found through COLASEARCH_DATA.

    A bare clone has none: its tests skip with the reason. `.ci/run` points the variable at the
    workspace's data, so CI runs them.
    """
    location = os.environ.get("COLASEARCH_DATA")
    if not location:
        pytest.skip("needs external benchmark data: set COLASEARCH_DATA to its directory")
    path = Path(location).expanduser().resolve()
    if not path.is_dir():
        pytest.skip(f"COLASEARCH_DATA={location} is not a directory")
    return path


@pytest.fixture(params=TINY_FAMILIES)
def tiny_model(request):
    return make_tiny_model(request.param)


@pytest.fixture
def tiny_llama():
    return make_tiny_model("llama")


@pytest.fixture(scope="session")
def smollm():
    """The embedded model; integration tests only."""
    from colasearch import load_model

    return load_model("smollm2-135m")


PLANTED_TARGET = 1.25


@pytest.fixture(scope="module")
def tiny8():
    return make_tiny_model("llama", num_layers=8)


@pytest.fixture
def planted(tiny8):
    """(space, evaluator, objective) of a whole-layer planted problem on an 8-layer tiny model."""
    from colasearch.engine.testing import PlantedEvaluator, PlantedObjective
    from colasearch.searchers.base import SearchSpace

    space = SearchSpace.for_model(tiny8, target_speedup=PLANTED_TARGET)
    evaluator = PlantedEvaluator(tiny8, PlantedEvaluator.random_weights(8, seed=1))
    return space, evaluator, PlantedObjective(PLANTED_TARGET)


@pytest.fixture
def planted_sub_blocks(tiny8):
    from colasearch.engine.testing import PlantedEvaluator, PlantedObjective
    from colasearch.searchers.base import SearchSpace

    space = SearchSpace.for_model(tiny8, target_speedup=PLANTED_TARGET, sub_blocks=True)
    evaluator = PlantedEvaluator(tiny8, PlantedEvaluator.random_weights(8, seed=1, sub_blocks=True))
    return space, evaluator, PlantedObjective(PLANTED_TARGET)
