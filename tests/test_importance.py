"""Importance measures of the published baselines, on tiny random models."""

import math

import pytest
import torch

from colasearch.importance import (_last_real_positions, _log_probs, _mean_kl, block_angular_distances,
                                   finercut_order)
from colasearch.searchers.base import SearchSpace
from colasearch.testing import make_tiny_model


def _batch(rows=3, width=10, seed=0):
    input_ids = torch.randint(3, 96, (rows, width), generator=torch.Generator().manual_seed(seed))
    return input_ids, torch.ones_like(input_ids)


def _identity_layers(model, layers):
    with torch.no_grad():
        for layer in layers:
            model.model.layers[layer].self_attn.o_proj.weight.zero_()
            model.model.layers[layer].mlp.down_proj.weight.zero_()
    return model


def test_last_real_positions_for_left_and_right_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert _last_real_positions(mask).tolist() == [4, 2, 4]


def test_block_angular_distance_is_measured_at_the_last_token():
    model = make_tiny_model("llama", num_layers=6)
    input_ids, mask = _batch()
    distances = block_angular_distances(model, input_ids, mask)
    assert distances.shape == (7, 7)
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
    for first, last in [(0, 1), (1, 4), (2, 5)]:  # hidden_states[6] is after the final norm: not used here
        cosine = torch.nn.functional.cosine_similarity(hidden[first][:, -1], hidden[last][:, -1], dim=-1)
        expected = (torch.arccos(cosine.clamp(-1, 1)) / math.pi).mean()
        assert float(distances[first, last]) == pytest.approx(float(expected), abs=1e-4)
    assert torch.allclose(distances, distances.T) and float(distances.diagonal().abs().max()) < 1e-3


def test_block_angular_distance_of_layers_that_do_nothing_is_zero():
    model = _identity_layers(make_tiny_model("llama", num_layers=8), [3, 4])
    distances = block_angular_distances(model, *_batch())
    assert float(distances[3, 5]) < 1e-3
    assert float(distances[2, 4]) > 0.01 and float(distances[4, 6]) > 0.01


def test_mean_kl_is_zero_for_the_same_distribution_and_positive_otherwise():
    model = make_tiny_model("llama", num_layers=4)
    input_ids, mask = _batch()
    space = SearchSpace.for_model(model)
    full = _log_probs(model, None, input_ids, mask)
    assert full.shape == (int(mask.sum()), 96)
    assert _mean_kl(full, full) == pytest.approx(0.0, abs=1e-6)
    pruned = _log_probs(model, space.schedule_skipping([(1, "all")]), input_ids, mask)
    assert _mean_kl(full, pruned) > 0


def test_finercut_walk_counts_its_forward_passes_and_removes_do_nothing_layers_first():
    model = _identity_layers(make_tiny_model("llama", num_layers=8), [2, 6])
    space = SearchSpace.for_model(model, target_speedup=1.25)  # 6 skippable layers, 2 must go
    walk = finercut_order(model, space, *_batch(),
                          stop=lambda skipped: space.meets_target(space.chain_skipping(skipped)))
    assert sorted(walk.removed) == [(2, "all"), (6, "all")]
    assert walk.forwards == 1 + 6 + 5  # the reference, then every remaining candidate at each of two steps
