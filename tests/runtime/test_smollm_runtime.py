"""The runtime on the embedded SmolLM2-135M-Instruct (real weights, 30 layers)."""

import pytest
import torch

from colasearch import Schedule, scheduled
from colasearch.cost import CostModel

pytestmark = pytest.mark.integration


def test_identity_and_cached_generation_on_smollm(smollm):
    model, tokenizer = smollm
    batch = tokenizer(["The capital of France is", "2 + 2 ="], return_tensors="pt", padding=True)
    reference = model(**batch).logits
    with scheduled(model, Schedule.identity(model)):
        assert torch.equal(model(**batch).logits, reference)
    schedule = Schedule.from_layers([0, 1, 2, 3, 3, 4, {"layer": 5, "run": "attn"}] + list(range(8, 30)), model=model)
    with scheduled(model, schedule):
        kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        cached = model.generate(**batch, use_cache=True, **kwargs)
        uncached = model.generate(**batch, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)


def test_ideal_speedup_counts_the_output_projection(smollm):
    model, _ = smollm
    costs = CostModel.from_model(model)
    drop_ten = Schedule.from_layers([layer for layer in range(30) if not 10 <= layer < 20])
    assert costs.ideal_speedup(drop_ten) == pytest.approx(1.357, abs=1e-3)
    assert costs.head == 576 * 49152
