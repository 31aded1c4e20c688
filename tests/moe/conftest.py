import pytest
import torch

from colasearch.testing import TINY_MOE_FAMILIES, make_tiny_model

NUM_LAYERS = 4
_MODELS = {}


def tiny_moe(family: str):
    """One tiny model per family for the whole session; tests restore what they patch."""
    if family not in _MODELS:
        _MODELS[family] = make_tiny_model(family, NUM_LAYERS)
    return _MODELS[family]


@pytest.fixture(params=TINY_MOE_FAMILIES)
def moe_model(request):
    return tiny_moe(request.param)


def prompts(batch_size: int = 4, width: int = 10, padded: bool = True, seed: int = 0):
    """Left-padded prompts of different lengths, as batched generation sees them."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, 96, (batch_size, width), generator=generator)
    mask = torch.ones_like(input_ids)
    if padded:
        for row in range(batch_size):
            pad = (row * 3) % (width - 2)
            input_ids[row, :pad] = 0
            mask[row, :pad] = 0
    return input_ids, mask


# Importance used by most tests: decreasing with depth, like calibrated vectors tend to be.
IMPORTANCE = (0.4, 0.3, 0.2, 0.1)
