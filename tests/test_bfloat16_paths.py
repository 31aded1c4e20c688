"""bfloat16 and split (accelerate-dispatched) models through MoE calibration, speculative decoding and the
evaluator, on tiny models on the CPU.

A split model is made with ``accelerate.dispatch_model(..., force_hooks=True)``: on one CPU its hooks move
nothing, but every layer runs behind the same hooks a multi-GPU ``--device-map auto`` installs.
"""

from __future__ import annotations

import pytest
import torch

from colasearch import Schedule, scheduled
from colasearch.devices import model_device
from colasearch.runtime import greedy_generate
from colasearch.testing import make_tiny_model

NEW_TOKENS = 12


def _dispatched(family: str, dtype=torch.bfloat16):
    from accelerate import dispatch_model

    model = make_tiny_model(family, num_layers=4, dtype=dtype)
    device_map = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu",
                  **{f"model.layers.{index}": "cpu" for index in range(4)}}
    model = dispatch_model(model, device_map=device_map, force_hooks=True)
    assert hasattr(model.model.layers[0], "_hf_hook")
    return model


def _prompts(count=3):
    return [torch.randint(3, 96, (1, 7), generator=torch.Generator().manual_seed(seed)) for seed in range(count)]


@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe"])
def test_moe_calibration_and_skipping_in_bfloat16(family):
    from colasearch.moe import calibrate_importance, expert_skip_ratio, expert_skipping_section

    model = make_tiny_model(family, num_layers=4, dtype=torch.bfloat16)
    input_ids = torch.randint(3, 96, (3, 10), generator=torch.Generator().manual_seed(0))
    importance = calibrate_importance(model, input_ids, batch_size=2)
    assert len(importance) == 4 and min(importance) >= 0 and sum(importance) == pytest.approx(1.0)
    schedule = Schedule.identity(model).with_fields(experts=expert_skipping_section(importance, max(importance) / 4))
    assert 0.0 < expert_skip_ratio(model, schedule, input_ids) < 1.0
    full = model(input_ids).logits
    with scheduled(model, schedule):
        skipped = model(input_ids).logits
    assert full.dtype == skipped.dtype == torch.bfloat16 and not torch.equal(full, skipped)


def test_speculative_decoding_in_bfloat16_matches_greedy_up_to_rounding():
    """Verification scores k+1 tokens in one forward, generation one at a time; in bfloat16 the two can
    round a near tie differently, so exactness holds per token almost always, not by construction."""
    from colasearch.speculative import speculative_generate

    model = make_tiny_model("llama", dtype=torch.bfloat16)
    draft = Schedule.from_layers([0, 2, 3, 5], model=model)
    agree = total = 0
    for prompt in _prompts(3):
        output, stats = speculative_generate(model, draft, prompt, max_new_tokens=NEW_TOKENS, eos_token_id=())
        expected = greedy_generate(model, prompt, max_new_tokens=NEW_TOKENS)
        assert output.shape == expected.shape and output.device == model_device(model)
        assert 0.0 <= stats.acceptance_rate <= 1.0 and stats.new_tokens == NEW_TOKENS
        agree += int((output[0, 7:] == expected[0, 7:]).sum())
        total += NEW_TOKENS
    assert agree / total >= 0.75


def test_a_split_model_evaluates_as_the_whole_model_does():
    from colasearch.evaluator import Evaluator
    from colasearch.tasks import load_task
    from colasearch.tasks.char_tokenizer import CharTokenizer

    whole, split = make_tiny_model("llama", num_layers=4, dtype=torch.bfloat16), _dispatched("llama")
    schedule = Schedule.from_layers([0, 1, 1, {"layer": 2, "run": "attn"}, 3], model=whole)
    results = []
    for model in (whole, split):
        evaluator = Evaluator.from_options(model, CharTokenizer(), load_task("builtin:capitals"), search_size=4,
                                           heldout_size=2)
        assert evaluator.fast
        results.append(evaluator.evaluate(schedule).quality)
        prompt = _prompts(1)[0]
        with scheduled(model, schedule):
            results.append(greedy_generate(model, prompt, max_new_tokens=6).tolist())
    assert results[0] == results[2] and results[1] == results[3]


def test_a_split_moe_calibrates_and_drafts():
    from colasearch.moe import calibrate_importance
    from colasearch.speculative import speculative_generate

    whole, split = make_tiny_model("mixtral", num_layers=4, dtype=torch.bfloat16), _dispatched("mixtral")
    input_ids = torch.randint(3, 96, (2, 8), generator=torch.Generator().manual_seed(0))
    assert calibrate_importance(split, input_ids) == pytest.approx(calibrate_importance(whole, input_ids))
    prompt = _prompts(1)[0]
    draft = Schedule.from_layers([0, 2, 3], model=whole)
    outputs = [speculative_generate(model, draft, prompt, max_new_tokens=6, eos_token_id=())[0] for model in (whole, split)]
    assert torch.equal(*outputs)
