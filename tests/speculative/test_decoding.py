"""Self-speculative decoding returns exactly the full model's greedy output, for any draft schedule."""

import math
from functools import cache

import pytest
import torch

from colasearch import ColasearchError, Schedule, ScheduleError, scheduled
from colasearch.runtime import greedy_generate
from colasearch.speculative import speculative_generate
from colasearch.speculative.cache import SharedDraftCache
from colasearch.testing import TINY_FAMILIES, make_tiny_model

NEW_TOKENS = 20
_MODELS = {family: make_tiny_model(family) for family in TINY_FAMILIES}

DRAFTS = {
    "prefix": [0, 1, 2, 3],
    "skips": [0, 2, 3, 5],
    "repeats": [0, 1, 1, 2, 4, 5],
    "sub-blocks": [0, {"layer": 2, "run": "attn"}, 3, {"layer": 4, "run": "mlp"}, 5],
    "reordered, mlp-only first": [{"layer": 0, "run": "mlp"}, 3, 1, 1, 5],
}


def _prompt(length=7, seed=1):
    return torch.randint(3, 96, (1, length), generator=torch.Generator().manual_seed(seed))


def _left_padded_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = [7, 4, 6, 3]
    input_ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, length in enumerate(lengths):
        input_ids[row, -length:] = torch.randint(3, 96, (length,), generator=generator)
        mask[row, -length:] = 1
    return input_ids, mask


@cache
def _reference(family, batched=False):
    model = _MODELS[family]
    if batched:
        input_ids, mask = _left_padded_batch()
        return greedy_generate(model, input_ids, mask, 16)
    # Past the sliding window (8) of the qwen2/mistral tiny configs, so rolled-back windows are exercised.
    return greedy_generate(model, _prompt(), None, NEW_TOKENS)


CASES = [("prefix", "adaptive"), ("skips", 3), ("repeats", 3), ("repeats", "adaptive"), ("sub-blocks", 2),
         ("reordered, mlp-only first", 3)]


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize(("draft", "draft_tokens"), CASES, ids=[f"{draft}-k{k}" for draft, k in CASES])
def test_output_is_the_full_models_greedy_output(family, draft, draft_tokens):
    model = _MODELS[family]
    prompt = _prompt()
    reference = _reference(family)
    schedule = Schedule.from_layers(DRAFTS[draft], model=model)
    output, stats = speculative_generate(model, schedule, prompt, max_new_tokens=NEW_TOKENS, draft_tokens=draft_tokens)
    assert torch.equal(output, reference)
    assert stats.new_tokens == NEW_TOKENS
    assert 0 <= stats.accepted <= stats.drafted
    assert 0.0 <= stats.acceptance_rate <= 1.0


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("draft", ["repeats", "sub-blocks"])
def test_left_padded_batch_matches_generate(family, draft):
    model = _MODELS[family]
    input_ids, mask = _left_padded_batch()
    reference = _reference(family, batched=True)
    schedule = Schedule.from_layers(DRAFTS[draft], model=model)
    output, stats = speculative_generate(model, schedule, input_ids, mask, max_new_tokens=16, draft_tokens=2)
    assert torch.equal(output, reference)
    assert stats.batch_size == 4


def test_rows_that_reach_eos_are_padded_and_generation_stops_like_generate():
    model = _MODELS["llama"]
    input_ids, mask = _left_padded_batch()
    free = _reference("llama", batched=True)[:, input_ids.shape[1]:]
    # End tokens taken from each row's third token: rows finish at different steps, all within the budget.
    eos = sorted({int(token) for token in free[:, 2]})
    reference = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=20, do_sample=False,
                               pad_token_id=0, eos_token_id=eos)
    assert reference.shape[1] - input_ids.shape[1] <= 3
    schedule = Schedule.from_layers(DRAFTS["skips"], model=model)
    output, stats = speculative_generate(model, schedule, input_ids, mask, max_new_tokens=20, draft_tokens=3,
                                         eos_token_id=eos)
    assert torch.equal(output, reference)
    assert stats.new_tokens == reference.shape[1] - input_ids.shape[1]
    assert (output[:, input_ids.shape[1]:] == 0).any()


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_identity_draft_is_always_accepted(family):
    model = _MODELS[family]
    schedule = Schedule.identity(model)
    k = 3
    output, stats = speculative_generate(model, schedule, _prompt(), max_new_tokens=NEW_TOKENS, draft_tokens=k)
    assert torch.equal(output, _reference(family))
    assert stats.acceptance_rate == 1.0 and stats.rejections == 0
    # The prefill yields one token, then every round yields k + 1 (the last round only what is left).
    assert stats.full_forward_calls == 1 + math.ceil((NEW_TOKENS - 1) / (k + 1))
    assert stats.shared_cache_slots == 6 and stats.private_cache_slots == 0


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_unshared_draft_cache_is_exact_too(family):
    model = _MODELS[family]
    schedule = Schedule.from_layers(DRAFTS["sub-blocks"], model=model)
    output, stats = speculative_generate(model, schedule, _prompt(), max_new_tokens=NEW_TOKENS, draft_tokens=3,
                                         share_cache=False)
    assert torch.equal(output, _reference(family))
    assert stats.shared_cache_slots == 0 and stats.private_cache_slots == 4


def test_stats_count_forwards():
    model = _MODELS["qwen3"]
    plain = Schedule.from_layers(DRAFTS["skips"], model=model)
    _, stats = speculative_generate(model, plain, _prompt(), max_new_tokens=NEW_TOKENS, draft_tokens=2)
    assert stats.draft_forward_calls == stats.drafted
    assert stats.full_forward_calls == 1 + stats.rounds + (stats.new_tokens - 1 - stats.rounds - stats.accepted)
    assert stats.rejections <= stats.rounds
    assert stats.tokens_per_full_forward >= 1.0
    repeating = Schedule.from_layers(DRAFTS["repeats"], model=model)
    _, stats = speculative_generate(model, repeating, _prompt(), max_new_tokens=NEW_TOKENS, draft_tokens=2)
    # One extra draft forward fills the draft-only slot of the repeated layer over the prompt.
    assert stats.draft_forward_calls == stats.drafted + 1
    assert stats.private_cache_slots == 1 and stats.shared_cache_slots == 5


def test_draft_shares_the_full_models_cache_slots():
    model = _MODELS["llama"]
    schedule = Schedule.from_layers([0, 1, 1, {"layer": 3, "run": "mlp"}, 4], model=model)
    caches = SharedDraftCache.build(model, schedule)
    assert caches.draft_entry_slots == ("shared", "shared", "private", "none", "shared")
    assert caches.shared == (0, 1, 4)
    view_layers = caches.draft_view.layers
    assert view_layers[0] is caches.full.layers[0] and view_layers[1] is caches.full.layers[1]
    assert view_layers[4] is caches.full.layers[4]
    assert view_layers[2] is caches.private[0]
    assert all(layer is not view_layers[3] for layer in caches.full.layers)


def test_model_is_left_unpatched():
    model = _MODELS["mistral"]
    prompt = _prompt()
    before = model(prompt).logits
    speculative_generate(model, Schedule.from_layers(DRAFTS["repeats"], model=model), prompt, max_new_tokens=8)
    assert torch.equal(model(prompt).logits, before)
    assert model.config.num_hidden_layers == 6


@pytest.mark.parametrize("draft_tokens", [0, 33, -1, "many", 2.5, True])
def test_bad_draft_tokens_are_refused(draft_tokens):
    model = _MODELS["llama"]
    with pytest.raises(ColasearchError, match="draft tokens"):
        speculative_generate(model, Schedule.from_layers([0, 1], model=model), _prompt(), draft_tokens=draft_tokens)


def test_bad_input_is_refused():
    model = _MODELS["llama"]
    schedule = Schedule.from_layers([0, 1], model=model)
    with pytest.raises(ScheduleError, match="out of range"):
        speculative_generate(model, Schedule.from_layers([0, 9]), _prompt())
    with pytest.raises(ColasearchError, match="max_new_tokens"):
        speculative_generate(model, schedule, _prompt(), max_new_tokens=0)
    with pytest.raises(ColasearchError, match="attention_mask"):
        speculative_generate(model, schedule, _prompt(), attention_mask=torch.ones(1, 3, dtype=torch.long))
    with scheduled(model, schedule):
        with pytest.raises(ColasearchError, match="already runs a schedule"):
            speculative_generate(model, schedule, _prompt())


@pytest.mark.integration
def test_embedded_model_output_is_identical(smollm):
    model, tokenizer = smollm
    encoded = tokenizer("The capital of France is", return_tensors="pt")
    reference = greedy_generate(model, encoded.input_ids, encoded.attention_mask, 20)
    draft = Schedule.from_layers([layer for layer in range(30) if layer % 3 != 1] + [27], model=model)
    output, stats = speculative_generate(model, draft, encoded.input_ids, encoded.attention_mask,
                                         max_new_tokens=20, draft_tokens="adaptive")
    assert torch.equal(output, reference)
    assert stats.private_cache_slots == 1 and stats.drafted > 0 and 0.0 <= stats.acceptance_rate <= 1.0
