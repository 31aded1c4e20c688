"""The embedded model in bfloat16 scores ARC-Easy as float32 does (BENCHMARKS.md has the 200-item run)."""

from __future__ import annotations

import pytest
import torch

from colasearch.evaluator import Evaluator
from colasearch.loading import load_model
from colasearch.tasks import load_task

ITEMS = 24  # bfloat16 matmuls are emulated on CPUs without AVX512-BF16: keep CI to seconds, not minutes


@pytest.mark.integration
def test_bfloat16_arc_easy_agrees_with_float32(smollm, shared_data):
    task_spec = f"jsonl:{shared_data / 'arc_easy.jsonl'}"
    half, tokenizer = load_model("smollm2-135m", dtype="bfloat16", device="cpu")
    assert next(half.parameters()).dtype == torch.bfloat16
    qualities = [Evaluator.from_options(model, tokenizer, load_task(task_spec), search_size=1, heldout_size=ITEMS)
                 .evaluate(None, "heldout").quality for model in (smollm[0], half)]
    full, bf16 = qualities
    assert abs(full["prob"] - bf16["prob"]) <= 0.02
    assert abs(full["acc"] - bf16["acc"]) <= 2 / ITEMS  # at most two items change their answer
