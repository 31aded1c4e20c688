import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colasearch import Schedule, ScheduleError, apply_schedule, restore, scheduled
from colasearch.runtime import ScheduledLayers, applied_schedule
from colasearch.testing import TINY_FAMILIES, make_tiny_model

NUM_LAYERS = 6
_MODELS = {family: make_tiny_model(family, NUM_LAYERS) for family in TINY_FAMILIES}

entries = st.one_of(
    st.integers(0, NUM_LAYERS - 1),
    st.builds(lambda layer, run: {"layer": layer, "run": run}, st.integers(0, NUM_LAYERS - 1), st.sampled_from(["attn", "mlp"])),
)
chains = st.lists(entries, min_size=1, max_size=10)


def _batch(batch_size: int, seed: int = 0):
    """Left-padded prompts of different lengths, the way batched generation sees them."""
    generator = torch.Generator().manual_seed(seed)
    lengths = [7, 4, 6, 3][:batch_size] if batch_size > 1 else [7]
    width = max(lengths)
    input_ids = torch.zeros(batch_size, width, dtype=torch.long)
    mask = torch.zeros(batch_size, width, dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, width - length:] = torch.randint(3, 96, (length,), generator=generator)
        mask[row, width - length:] = 1
    return input_ids, mask


def _generate(model, input_ids, mask, use_cache):
    return model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                          use_cache=use_cache, pad_token_id=0)


@pytest.mark.parametrize("family", TINY_FAMILIES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chain=chains, batch_size=st.sampled_from([1, 4]))
def test_cached_generation_equals_uncached(family, chain, batch_size):
    model = _MODELS[family]
    input_ids, mask = _batch(batch_size)
    with scheduled(model, Schedule.from_layers(chain, model=model)):
        cached = _generate(model, input_ids, mask, use_cache=True)
        uncached = _generate(model, input_ids, mask, use_cache=False)
    assert torch.equal(cached, uncached), f"chain {chain}"


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_identity_schedule_is_bit_identical(family):
    model = _MODELS[family]
    input_ids, mask = _batch(4)
    reference = model(input_ids=input_ids, attention_mask=mask).logits
    with scheduled(model, Schedule.identity(model)):
        patched = model(input_ids=input_ids, attention_mask=mask).logits
    assert torch.equal(reference, patched)


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_restore_is_bit_identical(family):
    model = _MODELS[family]
    input_ids, mask = _batch(4)
    reference = model(input_ids=input_ids, attention_mask=mask).logits
    schedule = Schedule.from_layers([0, 2, 2, {"layer": 5, "run": "mlp"}, 1, {"layer": 3, "run": "attn"}], model=model)
    apply_schedule(model, schedule)
    changed = model(input_ids=input_ids, attention_mask=mask).logits
    restore(model)
    assert not torch.equal(reference, changed)
    assert torch.equal(reference, model(input_ids=input_ids, attention_mask=mask).logits)
    assert applied_schedule(model) is None
    assert model.config.num_hidden_layers == NUM_LAYERS


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_parameters_and_storage_unchanged(family):
    model = _MODELS[family]
    before = {name: (p.data_ptr(), p.numel()) for name, p in model.named_parameters()}
    state_keys = list(model.state_dict().keys())
    with scheduled(model, Schedule.from_layers([0, 0, 0, 5, 5, {"layer": 1, "run": "attn"}], model=model)):
        after = {name: (p.data_ptr(), p.numel()) for name, p in model.named_parameters()}
        assert after == before
        assert list(model.state_dict().keys()) == state_keys
        assert isinstance(model.model.layers, ScheduledLayers)
        # The executed chain holds references, not registered copies.
        assert len(list(model.model.layers.children())) == NUM_LAYERS


def test_skipped_layers_do_not_run(tiny_llama):
    calls = []
    hooks = [layer.register_forward_hook(lambda module, args, out, index=i: calls.append(index))
             for i, layer in enumerate(tiny_llama.model.layers)]
    try:
        with scheduled(tiny_llama, Schedule.from_layers([4, 1, 1], model=tiny_llama)):
            tiny_llama(torch.randint(3, 96, (1, 5)))
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [4, 1, 1]


def test_repeated_layer_gets_its_own_cache_slot(tiny_llama):
    with scheduled(tiny_llama, Schedule.from_layers([0, 3, 3, 3], model=tiny_llama)):
        out = tiny_llama(torch.randint(3, 96, (1, 5)), use_cache=True)
    cache = out.cache
    assert len(cache.layers) == 4
    keys = [layer.keys for layer in cache.layers]
    assert all(k.shape[-2] == 5 for k in keys)
    # Each repetition of layer 3 sees a different input, so its cached keys differ.
    assert not torch.equal(keys[1], keys[2]) and not torch.equal(keys[2], keys[3])


def test_mlp_only_first_entry_keeps_sequence_length(tiny_llama):
    schedule = Schedule.from_layers([{"layer": 0, "run": "mlp"}, 1, 2], model=tiny_llama)
    input_ids, mask = _batch(1)
    with scheduled(tiny_llama, schedule):
        cached = _generate(tiny_llama, input_ids, mask, use_cache=True)
        uncached = _generate(tiny_llama, input_ids, mask, use_cache=False)
    assert torch.equal(cached, uncached)


def test_out_of_range_and_foreign_schedules_are_refused(tiny_llama):
    with pytest.raises(ScheduleError, match="out of range"):
        apply_schedule(tiny_llama, Schedule.from_layers([0, NUM_LAYERS]))
    other = make_tiny_model("qwen2", NUM_LAYERS)
    foreign = Schedule.from_layers([0, 1], model=other)
    with pytest.raises(ScheduleError, match="another model"):
        apply_schedule(tiny_llama, foreign)
    assert applied_schedule(tiny_llama) is None
    apply_schedule(tiny_llama, foreign, force=True)
    restore(tiny_llama)


def test_unknown_architecture_is_refused():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(ScheduleError, match="not supported"):
        apply_schedule(model, Schedule.from_layers([0]))


def test_reapplying_replaces_previous_schedule(tiny_llama):
    x = torch.randint(3, 96, (1, 5))
    with scheduled(tiny_llama, Schedule.from_layers([1, 2], model=tiny_llama)):
        expected = tiny_llama(x).logits
    apply_schedule(tiny_llama, Schedule.from_layers([0, 0], model=tiny_llama))
    apply_schedule(tiny_llama, Schedule.from_layers([1, 2], model=tiny_llama))
    assert torch.equal(tiny_llama(x).logits, expected)
    restore(tiny_llama)
    assert tiny_llama.config.num_hidden_layers == NUM_LAYERS
