"""Item subsets (fidelity levels), per-item values and the dense KL signal of the evaluator."""

import pytest

from colasearch.evaluator import Evaluator
from colasearch.evaluator.evaluator import fidelity_levels
from colasearch.schedule import Schedule
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer

TOKENIZER = CharTokenizer()


def make(model, **options):
    return Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=64, heldout_size=8,
                                  **options)


def test_levels_halve_down_to_the_smallest_decision():
    assert fidelity_levels(64) == (16, 32, 64)
    assert fidelity_levels(200) == (25, 50, 100, 200)
    assert fidelity_levels(20) == (20,)


def test_a_subset_is_the_prefix_of_the_full_split_item_by_item(tiny_llama):
    evaluator = make(tiny_llama)
    schedule = Schedule.from_layers([0, 1, 3, 5], model=tiny_llama)
    small = evaluator.evaluate(schedule, items=10)  # rounds up to the first level
    assert small.items == 16
    full = make(tiny_llama).evaluate(schedule)
    assert full.items == 64
    for metric, values in small.per_item.items():
        assert values == pytest.approx(full.per_item[metric][:16], abs=1e-5)
        assert full.quality[metric] == pytest.approx(sum(full.per_item[metric]) / 64, abs=1e-5)


def test_promoting_a_candidate_runs_only_its_new_items(tiny_llama):
    evaluator = make(tiny_llama, prefix_cache_mb=0)
    schedule = Schedule.from_layers([0, 2, 3, 5], model=tiny_llama)
    for items in (16, 32, 64):
        evaluator.evaluate(schedule, items=items)
    stepwise = evaluator.stats["entries_run"]
    direct = make(tiny_llama, prefix_cache_mb=0)
    direct.evaluate(schedule)
    assert stepwise == direct.stats["entries_run"]


def full_and_skipped(model, **options):
    """The full model's result and that of a chain skipping layers 1-4, from one evaluator."""
    evaluator = make(model, **options)
    return evaluator.evaluate(Schedule.identity(model)), evaluator.evaluate(Schedule.from_layers([0, 5], model=model))


def test_dense_kl_is_zero_for_the_full_model_and_positive_for_a_skip(tiny_llama):
    full, skipped = full_and_skipped(tiny_llama, dense_kl=True)
    assert full.quality["kl"] == pytest.approx(0.0, abs=1e-5)
    assert skipped.quality["kl"] > 1e-4
    assert skipped.quality["prob_kl"] == pytest.approx(skipped.quality["prob"] - skipped.quality["kl"], abs=1e-6)
    assert "kl" not in make(tiny_llama).evaluate(Schedule.identity(tiny_llama)).quality


def test_choice_kl_is_zero_for_the_full_model_and_positive_for_a_skip(tiny_llama):
    full, skipped = full_and_skipped(tiny_llama, dense_kl=True)
    assert full.quality["choice_kl"] == pytest.approx(0.0, abs=1e-6)
    assert skipped.quality["choice_kl"] > 1e-4
    assert len(skipped.per_item["choice_kl"]) == 64


def test_text_kl_covers_the_items_own_tokens_and_is_zero_for_the_full_model(tiny_llama):
    full, skipped = full_and_skipped(tiny_llama, context_kl=True)
    assert full.quality["text_kl"] == pytest.approx(0.0, abs=1e-5)
    assert skipped.quality["text_kl"] > 1e-4
    # The scored tokens are a part of the item's tokens: text_kl averages over more positions than kl.
    assert skipped.quality["text_kl"] != pytest.approx(skipped.quality["kl"], abs=1e-6)
    assert len(skipped.per_item["text_kl"]) == 64
    assert "text_kl" not in make(tiny_llama, dense_kl=True).evaluate(Schedule.identity(tiny_llama)).quality
