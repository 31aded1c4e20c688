"""Half precision: every tensor the evaluator makes follows the model's dtype and device, and the fast path
agrees with the plain one within a stated tolerance.

Tolerance (bfloat16, tiny models with weights ~N(0, 0.2), |log-prob| up to ~10): the fast and the plain
path differ by at most ``LOGPROB_ATOL`` nats per scored token (measured 0.013 to 0.047: bfloat16 keeps 8
bits of mantissa, and packing changes the shapes and so the order of the sums) and their metrics by at most
``METRIC_ATOL``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from colasearch.devices import model_device, model_dtype
from colasearch.evaluator import Evaluator, reference_scores
from colasearch.schedule import Schedule
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.testing import make_tiny_model

LOGPROB_ATOL = 0.1
METRIC_ATOL = 0.01
TOKENIZER = CharTokenizer()
PACKAGE = str(Path(__import__("colasearch").__file__).parent)
FACTORIES = {torch.tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.eye,
             torch.zeros_like, torch.ones_like, torch.full_like, torch.empty_like, torch.as_tensor}


class FactoryRecorder(TorchFunctionMode):
    """Every tensor a factory function makes when called from colasearch code: (function, dtype, where)."""

    def __init__(self):
        super().__init__()
        self.made: list[tuple[str, torch.dtype, str]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func in FACTORIES and isinstance(result, torch.Tensor):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE):
                self.made.append((func.__name__, result.dtype, f"{caller.f_code.co_filename}:{caller.f_lineno}"))
        return result


def _schedule(model):
    return Schedule.from_layers([0, 1, {"layer": 2, "run": "attn"}, 4, 4, 5], model=model)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_every_floating_tensor_the_evaluator_makes_has_the_models_dtype(attention, tmp_path):
    model = make_tiny_model("llama", dtype=torch.bfloat16)
    model.config._attn_implementation = attention
    path = tmp_path / "text.txt"
    path.write_text("a stitch in time saves nine; " * 20)
    tasks = [load_task("builtin:capitals"), load_task(f"fidelity:{path}", window=24, stride=12)]
    recorder = FactoryRecorder()
    for task in tasks:
        evaluator = Evaluator.from_options(model, TOKENIZER, task, search_size=4, heldout_size=2, prefix_cache_mb=64)
        with recorder:
            evaluator.evaluate(_schedule(model))
            evaluator.evaluate(None)
            evaluator.calibration_batch(max_items=2)
        references = [state for pair in evaluator._references.values() for state in pair if state is not None]
        states = list(evaluator.prefix_cache._states.values()) + references
        assert states and {state.dtype for state in states} == {torch.bfloat16}
        for batch in evaluator.batches("search"):
            for mask in batch.masks.values():
                assert mask.dtype in (torch.bool, torch.bfloat16) and mask.device == model_device(model)
    floating = [(name, dtype, where) for name, dtype, where in recorder.made if dtype.is_floating_point]
    assert all(dtype == model_dtype(model) for _, dtype, _ in floating), floating
    if attention == "eager":  # the additive mask is the one floating tensor the evaluator builds itself
        assert floating


@pytest.mark.parametrize("family", ["llama", "qwen2", "mixtral"])
def test_bfloat16_fast_path_agrees_with_the_plain_path(family):
    model = make_tiny_model(family, dtype=torch.bfloat16)
    schedule = _schedule(model)
    fast = Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=6, heldout_size=2,
                                  batch_tokens=300)
    plain = Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=6, heldout_size=2)
    plain.fast = False
    assert fast.fast
    mine, theirs = fast._fast_scores(schedule, "search"), reference_scores(model, schedule, fast.packed("search"))
    for a, b in zip(mine, theirs):
        assert a.target_logprobs.dtype == torch.float32  # scores are upcast before the softmax
        torch.testing.assert_close(a.target_logprobs, b.target_logprobs, atol=LOGPROB_ATOL, rtol=0)
    assert fast.evaluate(schedule).quality == pytest.approx(plain.evaluate(schedule).quality, abs=METRIC_ATOL)


@pytest.mark.parametrize("family", ["llama"])
def test_bfloat16_ranks_schedules_as_float32_does(family):
    """Every pair of schedules float32 tells apart by more than the bfloat16 tolerance keeps its order.

    Dense families only: in a MoE model bfloat16 rounding can flip a top-k routing choice, which moves a
    score by more than rounding (measured on tiny Mixtral: a 0.02 swing in ``prob``)."""
    chains = [None, [0, 1, 2, 3, 4], [0, 2, 4], [0, 1, 2, 3], [5], [0, 5], [1, 2, 3, 4]]
    scores = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = make_tiny_model(family, dtype=dtype)
        evaluator = Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=8,
                                           heldout_size=2)
        scores[dtype] = [evaluator.evaluate(None if chain is None else Schedule.from_layers(chain, model=model))
                         .quality["prob"] for chain in chains]
    full, half = scores[torch.float32], scores[torch.bfloat16]
    assert max(abs(a - b) for a, b in zip(full, half)) <= METRIC_ATOL
    pairs = [(i, j) for i in range(len(chains)) for j in range(len(chains)) if full[i] - full[j] > 2 * METRIC_ATOL]
    assert len(pairs) >= 10
    assert all(half[i] > half[j] for i, j in pairs)
