"""alpha_l = KL(full || layer l without routed experts), normalised across layers."""

import pytest
import torch
from torch.nn import functional as F

from colasearch import Schedule, scheduled
from colasearch.moe import calibrate_importance, sparse_blocks
from colasearch.runtime import applied_schedule

from .conftest import NUM_LAYERS, prompts


def test_importance_is_one_normalised_value_per_layer(moe_model):
    input_ids, mask = prompts()
    importance = calibrate_importance(moe_model, input_ids, mask)
    assert len(importance) == NUM_LAYERS
    assert all(alpha >= 0.0 for alpha in importance)
    assert sum(importance) == pytest.approx(1.0)
    assert len(set(importance)) == NUM_LAYERS  # layers do differ


def test_importance_is_the_kl_of_removing_a_layers_routed_experts(moe_model):
    """Independent reference: a hook that replaces the routed output by zeros (shared experts still run)."""
    input_ids, mask = prompts()
    valid = mask.bool()
    _, blocks = sparse_blocks(moe_model)
    with torch.no_grad():
        full = moe_model(input_ids=input_ids, attention_mask=mask).logits.log_softmax(-1)[valid]
        divergences = []
        for layer in range(NUM_LAYERS):
            handle = blocks[layer].experts.register_forward_hook(
                lambda module, inputs, output: torch.zeros_like(output))
            try:
                without = moe_model(input_ids=input_ids, attention_mask=mask).logits.log_softmax(-1)[valid]
            finally:
                handle.remove()
            divergences.append(float(F.kl_div(without, full, log_target=True, reduction="none").sum(-1).mean()))
    expected = [value / sum(divergences) for value in divergences]
    assert calibrate_importance(moe_model, input_ids, mask, batch_size=3) == pytest.approx(expected, rel=1e-4)


def test_calibration_leaves_an_applied_schedule_in_place(moe_model):
    input_ids, mask = prompts()
    schedule = Schedule.from_layers([0, 1, 1, 3], model=moe_model)
    with scheduled(moe_model, schedule):
        before = moe_model(input_ids=input_ids, attention_mask=mask).logits
        calibrate_importance(moe_model, input_ids, mask)
        assert applied_schedule(moe_model) == schedule
        assert torch.equal(moe_model(input_ids=input_ids, attention_mask=mask).logits, before)


def test_dense_mlp_layers_get_zero_importance_and_are_never_gated():
    from transformers import AutoModelForCausalLM

    from colasearch.moe import expert_skip_stats, expert_skipping_section
    from colasearch.testing import tiny_config

    torch.manual_seed(0)
    config = tiny_config("qwen2_moe", NUM_LAYERS)
    config.mlp_only_layers = [1]
    model = AutoModelForCausalLM.from_config(config).eval()
    input_ids, mask = prompts()
    importance = calibrate_importance(model, input_ids, mask)
    assert importance[1] == 0.0 and all(importance[layer] > 0 for layer in (0, 2, 3))
    stats = expert_skip_stats(model, Schedule.identity(model).with_fields(
        experts=expert_skipping_section(importance, 0.5 * max(importance))), input_ids, mask)
    assert set(stats.routed) == {0, 2, 3}
    assert 0.0 < stats.ratio <= 1.0
