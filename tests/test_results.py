"""EvalResult's typed fields, and results written before them (results files, studies) reading into them."""

import json

from colasearch.evaluator.result_cache import ResultCache
from colasearch.results import EvalResult

#: A result as ``to_dict`` wrote it while these values travelled in ``extra``.
OLD = {"schedule_key": "k", "task": "t", "split": "search", "quality": {"acc": 0.5}, "ideal_speedup": 1.3,
       "measured_speedup": None, "seconds": 0.25,
       "extra": {"items": 4, "per_item": {"acc": [1.0, 0.0, 1.0, 0.0]}, "expert_skip_ratio": 0.25,
                 "acceptance_rate": 0.8, "accepted_fraction": 0.7, "draft_tokens": 3, "estimated": True,
                 "subset_quality": {"acc": 0.75}, "a_plugins_own": "kept"}}


def _fields(result):
    return (result.items, result.per_item, result.expert_skip_ratio, result.acceptance_rate,
            result.accepted_fraction, result.draft_tokens, result.estimated, result.subset_quality)


def test_a_result_written_before_the_typed_fields_loads_into_them():
    result = EvalResult.from_dict(OLD)
    assert _fields(result) == (4, {"acc": [1.0, 0.0, 1.0, 0.0]}, 0.25, 0.8, 0.7, 3, True, {"acc": 0.75})
    assert result.extra == {"a_plugins_own": "kept"}   # what colasearch does not read stays where it was


def test_a_result_survives_its_dict_and_json():
    result = EvalResult("k", "t", "search", {"acc": 0.5}, 1.3, items=4, per_item={"acc": [1.0, 0.0, 1.0, 0.0]},
                        acceptance_rate=0.8, draft_tokens=3)
    assert EvalResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert result.extra == {} and not result.estimated and result.expert_skip_ratio is None


def test_a_results_file_written_before_the_typed_fields_reads_back(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"key": "x", "result": OLD}, sort_keys=True) + "\n")
    result = ResultCache(path).get("x")
    assert result is not None and _fields(result) == (4, {"acc": [1.0, 0.0, 1.0, 0.0]}, 0.25, 0.8, 0.7, 3, True,
                                                      {"acc": 0.75})
