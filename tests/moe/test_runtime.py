"""Expert skipping in the runtime: exactness at tau = 0, monotone skip ratio, KV cache, restore."""

import pytest
import torch

from colasearch import Schedule, ScheduleError, apply_schedule, restore, scheduled
from colasearch.moe import expert_skip_ratio, expert_skip_stats, expert_skipping_section, installed_gates
from colasearch.testing import make_tiny_model

from .conftest import IMPORTANCE, NUM_LAYERS, prompts


def _with_experts(model, tau, renormalize=True, chain=None):
    base = Schedule.identity(model) if chain is None else Schedule.from_layers(chain, model=model)
    return base.with_fields(experts=expert_skipping_section(IMPORTANCE, tau, renormalize))


@pytest.mark.parametrize("renormalize", [True, False])
def test_tau_zero_is_bit_identical(moe_model, renormalize):
    input_ids, mask = prompts()
    reference = moe_model(input_ids=input_ids, attention_mask=mask).logits
    with scheduled(moe_model, _with_experts(moe_model, 0.0, renormalize)):
        assert installed_gates(moe_model) is not None
        patched = moe_model(input_ids=input_ids, attention_mask=mask).logits
    assert torch.equal(reference, patched)


def test_skip_ratio_is_monotone_in_tau(moe_model):
    input_ids, mask = prompts()
    taus = [0.0, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.2, 0.41]
    ratios = [expert_skip_ratio(moe_model, _with_experts(moe_model, tau), input_ids, mask) for tau in taus]
    assert ratios[0] == 0.0
    assert ratios[-1] == 1.0  # tau above every alpha_l skips every routed expert
    assert all(a <= b for a, b in zip(ratios, ratios[1:])), ratios
    assert 0.0 < ratios[len(taus) // 2] < 1.0


def test_skipping_changes_the_output_and_restore_is_exact(moe_model):
    input_ids, mask = prompts()
    reference = moe_model(input_ids=input_ids, attention_mask=mask).logits
    apply_schedule(moe_model, _with_experts(moe_model, 0.05))
    skipped = moe_model(input_ids=input_ids, attention_mask=mask).logits
    restore(moe_model)
    assert installed_gates(moe_model) is None
    assert not any("forward" in layer.mlp.__dict__ for layer in moe_model.model.layers)
    assert not torch.allclose(reference, skipped)
    assert torch.equal(reference, moe_model(input_ids=input_ids, attention_mask=mask).logits)


@pytest.mark.parametrize("tau", [0.02, 0.06])
def test_cached_and_uncached_greedy_generation_agree(moe_model, tau):
    input_ids, mask = prompts()
    with scheduled(moe_model, _with_experts(moe_model, tau)):
        cached, uncached = (
            moe_model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                               use_cache=use_cache, pad_token_id=0)
            for use_cache in (True, False)
        )
        assert torch.equal(cached, uncached)


def test_combined_with_layer_entries(moe_model):
    chain = [0, {"layer": 1, "run": "attn"}, 2, 2, {"layer": 3, "run": "mlp"}]
    schedule = _with_experts(moe_model, 0.03, chain=chain)
    input_ids, mask = prompts()
    reference = moe_model(input_ids=input_ids, attention_mask=mask).logits
    with scheduled(moe_model, Schedule.from_layers(chain, model=moe_model)):
        layers_only = moe_model(input_ids=input_ids, attention_mask=mask).logits

    stats = expert_skip_stats(moe_model, schedule, input_ids, mask)
    real_tokens = int(mask.sum())
    top_k = moe_model.config.num_experts_per_tok
    # Layer 1 runs attention only, so its experts never route; layer 2 runs twice.
    assert set(stats.routed) == {0, 2, 3}
    assert stats.routed[0] == stats.routed[3] == real_tokens * top_k
    assert stats.routed[2] == 2 * real_tokens * top_k
    assert 0.0 < stats.ratio < 1.0

    with scheduled(moe_model, schedule):
        both = moe_model(input_ids=input_ids, attention_mask=mask).logits
        cached, uncached = (
            moe_model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=5, do_sample=False,
                               use_cache=use_cache, pad_token_id=0)
            for use_cache in (True, False)
        )
    assert torch.equal(cached, uncached)
    assert not torch.allclose(both, layers_only)
    with scheduled(moe_model, schedule.with_fields(experts=expert_skipping_section(IMPORTANCE, 0.0))):
        assert torch.equal(moe_model(input_ids=input_ids, attention_mask=mask).logits, layers_only)
    assert torch.equal(moe_model(input_ids=input_ids, attention_mask=mask).logits, reference)


def test_padding_is_not_counted(moe_model):
    input_ids, mask = prompts()
    stats = expert_skip_stats(moe_model, _with_experts(moe_model, 0.03), input_ids, mask)
    assert set(stats.routed.values()) == {int(mask.sum()) * moe_model.config.num_experts_per_tok}


@pytest.mark.parametrize("implementation", ["eager", "batched_mm"])
def test_every_experts_implementation_skips_alike(moe_model, implementation):
    input_ids, mask = prompts()
    schedule = _with_experts(moe_model, 0.04)
    with scheduled(moe_model, schedule):
        grouped = moe_model(input_ids=input_ids, attention_mask=mask).logits
        original = moe_model.config._experts_implementation
        moe_model.config._experts_implementation = implementation
        try:
            other = moe_model(input_ids=input_ids, attention_mask=mask).logits
        finally:
            moe_model.config._experts_implementation = original
    torch.testing.assert_close(other, grouped, rtol=1e-4, atol=1e-4)


def test_dense_model_is_refused_and_left_untouched():
    model = make_tiny_model("llama", NUM_LAYERS)
    input_ids, mask = prompts()
    reference = model(input_ids=input_ids, attention_mask=mask).logits
    schedule = Schedule.identity(model).with_fields(experts=expert_skipping_section(IMPORTANCE, 0.1))
    with pytest.raises(ScheduleError, match="dense model with no routed experts"):
        apply_schedule(model, schedule)
    assert getattr(model, "_colasearch_saved_config", None) is None
    assert torch.equal(model(input_ids=input_ids, attention_mask=mask).logits, reference)


def test_importance_must_have_one_value_per_layer(moe_model):
    schedule = Schedule.identity(moe_model).with_fields(experts=expert_skipping_section(IMPORTANCE[:-1], 0.1))
    with pytest.raises(ScheduleError, match=f"3 values but the model has {NUM_LAYERS} layers"):
        apply_schedule(moe_model, schedule)
    assert installed_gates(moe_model) is None


def test_image_group_is_refused_on_a_text_model(moe_model):
    section = expert_skipping_section(IMPORTANCE, {"text": 0.1, "image": 0.2})
    with pytest.raises(ScheduleError, match="token group 'image'"):
        apply_schedule(moe_model, Schedule.identity(moe_model).with_fields(experts=section))
