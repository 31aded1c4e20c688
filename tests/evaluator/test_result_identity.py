"""A cached result belongs to one model (its weights, dtype and device kind) and one task's content."""

import json

import torch

from colasearch.evaluator import Evaluator
from colasearch.fingerprint import fingerprint
from colasearch.model_identity import model_identity
from colasearch.schedule import Schedule
from colasearch.tasks import builtin, load_task
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.testing import make_tiny_model

TOKENIZER = CharTokenizer()


def make(model, **options):
    return Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=10, heldout_size=4,
                                  **options)


def test_two_models_of_one_shape_share_no_result_through_one_file(tmp_path):
    path = tmp_path / "run.results.jsonl"
    base, tuned = make_tiny_model("llama", seed=0), make_tiny_model("llama", seed=1)
    assert fingerprint(base).shape_hash == fingerprint(tuned).shape_hash  # what the old key told them apart by
    schedule = Schedule.from_layers([0, 2, 3, 5], model=base)

    first = make(base, cache_path=path)
    base_results = first.evaluate_many([None, schedule])
    second = make(tuned, cache_path=path)
    tuned_results = second.evaluate_many([None, schedule])

    assert second.stats["computed"] == 2 and second.stats["result_cache_hits"] == 0
    # The second model's numbers are its own: what an evaluator with no results file computes for it.
    alone = make(tuned).evaluate_many([None, schedule])
    assert [r.quality for r in tuned_results] == [r.quality for r in alone]
    assert [r.quality for r in tuned_results] != [r.quality for r in base_results]
    keys = [json.loads(line)["key"] for line in path.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 4


def test_the_same_weights_loaded_again_read_their_results_back(tmp_path):
    path = tmp_path / "run.results.jsonl"
    make(make_tiny_model("llama", seed=0), cache_path=path).evaluate(None)
    again = make(make_tiny_model("llama", seed=0), cache_path=path)
    again.evaluate(None)
    assert again.stats["computed"] == 0 and again.stats["result_cache_hits"] == 1


def test_dtype_and_a_single_changed_tensor_change_the_model_identity():
    model = make_tiny_model("llama", seed=0)
    identity = model_identity(model)
    assert identity.endswith(":float32:cpu") and identity == model_identity(make_tiny_model("llama", seed=0))
    with torch.no_grad():
        model.model.layers[3].mlp.down_proj.weight.add_(1e-3)  # a fine-tune confined to one tensor
    assert model_identity(model) != identity
    assert model_identity(make_tiny_model("llama", seed=0, dtype=torch.bfloat16)).endswith(":bfloat16:cpu")


def test_a_results_file_of_the_old_key_format_is_only_missed(tiny_llama, tmp_path):
    path = tmp_path / "run.results.jsonl"
    evaluator = make(tiny_llama)
    old_key = f"{fingerprint(tiny_llama).shape_hash}|full|{evaluator.task_key}|search"
    stale = evaluator.evaluate(None).to_dict() | {"quality": {name: 123.0 for name in evaluator.task.metric_directions}}
    path.write_text(json.dumps({"key": old_key, "result": stale}) + "\n")
    reader = make(tiny_llama, cache_path=path)
    assert reader.evaluate(None).quality != stale["quality"] and reader.stats["computed"] == 1


def test_a_builtin_task_key_follows_its_items(monkeypatch):
    before = load_task("builtin:capitals").config_key()
    original = builtin.BUILTIN_TASKS["capitals"]
    monkeypatch.setitem(builtin.BUILTIN_TASKS, "capitals", lambda: original()[:-1])
    assert load_task("builtin:capitals").config_key() != before
