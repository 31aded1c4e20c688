import gc
import json

import pytest
import torch

from colasearch.evaluator import Evaluator, PrefixCache, prefix_cache
from colasearch.evaluator.prefix_cache import CacheBudget
from colasearch.schedule import Schedule
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer

TOKENIZER = CharTokenizer()


def make(model, **options):
    return Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=10, heldout_size=4,
                                  **options)


def test_cached_prefix_results_are_bit_identical_to_recomputed(tiny_model):
    parent = Schedule.from_layers([0, 1, 2, 3, 4, 5], model=tiny_model)
    children = [Schedule.from_layers(chain, model=tiny_model)
                for chain in ([0, 1, 2, 3, 5], [0, 1, 2, {"layer": 3, "run": "attn"}, 4, 5], [0, 1, 2, 3, 4, 4, 5])]
    cached = make(tiny_model)
    cached._fast_scores(parent, "search")
    for child in children:
        reused = cached._fast_scores(child, "search")
        recomputed = make(tiny_model, prefix_cache_mb=0)._fast_scores(child, "search")
        for mine, theirs in zip(reused, recomputed):
            assert torch.equal(mine.target_logprobs, theirs.target_logprobs)
    assert cached.stats["prefix_cache_hits"] >= len(children) and cached.stats["entries_reused"] > 0


def test_prefix_cache_is_bounded_and_evicts_least_recently_used():
    cache = PrefixCache(max_bytes=3 * 400)
    state = torch.zeros(100)  # 400 bytes
    for length in range(1, 5):
        cache.put(("search", 0), tuple((layer, "all") for layer in range(length)), state)
    assert cache.bytes <= 1200 and len(cache) == 3 and cache.evictions == 1
    assert cache.longest(("search", 0), ((0, "all"), (9, "all"))) == (0, None)  # prefix of length 1 was evicted
    length, found = cache.longest(("search", 0), tuple((layer, "all") for layer in range(6)))
    assert length == 4 and found is state
    assert cache.longest(("heldout", 0), ((0, "all"), (1, "all"))) == (0, None)  # batches never mix


def test_caches_sharing_a_budget_hold_at_most_its_bound_together():
    budget = CacheBudget(3 * 400)
    older, newer = PrefixCache(budget=budget), PrefixCache(budget=budget)
    state = torch.zeros(100)  # 400 bytes
    for length in range(1, 4):
        older.put(("search", 0), tuple((layer, "all") for layer in range(length)), state)
    assert budget.used == 1200 and len(older) == 3
    newer.put(("search", 0), ((7, "all"),), state)  # it has nothing of its own to give up: the older cache does
    assert budget.used == 1200 and len(older) == 2 and older.evictions == 1 and len(newer) == 1
    newer.put(("search", 0), ((7, "all"), (8, "all")), state)  # now it has one: its own oldest goes first
    assert budget.used == 1200 and len(newer) == 1 and newer.evictions == 1 and len(older) == 2
    assert newer.longest(("search", 0), ((7, "all"), (8, "all")))[0] == 2


def test_a_cache_takes_either_its_own_bound_or_a_shared_budget():
    with pytest.raises(ValueError, match="either"):
        PrefixCache()
    with pytest.raises(ValueError, match="either"):
        PrefixCache(max_bytes=10, budget=CacheBudget(10))


def test_the_evaluators_of_one_process_share_one_prefix_cache_bound(monkeypatch, tiny_llama):
    from colasearch import devices

    monkeypatch.setattr(prefix_cache, "_PROCESS_BUDGETS", {})
    sized = []
    monkeypatch.setattr(devices, "free_memory_bytes", lambda device: sized.append(device) or 40 * 2**30)
    first, second = make(tiny_llama), make(tiny_llama)
    # Two evaluators alive at once hold a quarter of the free memory together, not a quarter each.
    assert first.prefix_cache.budget is second.prefix_cache.budget and len(sized) == 1
    assert first.prefix_cache.max_bytes == 10 * 2**30
    explicit, other = make(tiny_llama, prefix_cache_mb=64), make(tiny_llama, prefix_cache_mb=64)
    assert explicit.prefix_cache.budget is other.prefix_cache.budget
    assert explicit.prefix_cache.max_bytes == 64 * 2**20 and explicit.prefix_cache.budget is not first.prefix_cache.budget
    schedule = Schedule.from_layers([0, 1, 3], model=tiny_llama)
    first.evaluate(schedule, "search")
    second.evaluate(schedule, "heldout")
    assert first.prefix_cache.budget.used == first.prefix_cache.bytes + second.prefix_cache.bytes > 0
    del first, second
    gc.collect()
    monkeypatch.setattr(devices, "free_memory_bytes", lambda device: 4 * 2**30)
    # Once no cache holds the default budget, the next one is sized against what is free now.
    assert make(tiny_llama).prefix_cache.max_bytes == 2**30


def test_result_cache_persists_across_evaluators(tiny_llama, tmp_path):
    path = tmp_path / "results.jsonl"
    schedule = Schedule.from_layers([0, 2, 4, 5], model=tiny_llama)
    first = make(tiny_llama, cache_path=path)
    results = first.evaluate_many([schedule, None, schedule])
    assert first.stats["computed"] == 2 and first.stats["result_cache_hits"] == 1
    assert results[0] == results[2] and results[1].schedule_key == "full" and results[0].schedule_key == schedule.key

    resumed = make(tiny_llama, cache_path=path)
    assert resumed.evaluate(schedule) == results[0]
    assert resumed.stats["computed"] == 0 and resumed.stats["result_cache_hits"] == 1
    # Another split configuration or split is a different key.
    assert make(tiny_llama, cache_path=path, seed=1).evaluate(schedule).schedule_key == schedule.key
    assert resumed.evaluate(schedule, "heldout").split == "heldout" and resumed.stats["computed"] == 1


def test_a_torn_last_line_is_skipped_and_repaired(tiny_llama, tmp_path):
    path = tmp_path / "results.jsonl"
    make(tiny_llama, cache_path=path).evaluate(None)
    with path.open("a") as handle:
        handle.write('{"key": "torn", "resu')
    again = make(tiny_llama, cache_path=path)
    assert again.evaluate(None) and again.stats["computed"] == 0
    again.evaluate(None, "heldout")
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["result"]["split"] == "heldout"
