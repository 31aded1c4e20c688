"""The evaluator reads a task's optional hooks and the run loop reads an evaluator's fidelity levels, per-item
values and splits from what the base classes declare, with their defaults; nothing is probed for with
hasattr. And the evaluator's settings are one EvaluatorConfig, the one its run context and Ray workers use."""

import json

import pytest
from pydantic import ValidationError

from colasearch.engine.session import RunContext
from colasearch.errors import ColasearchError, TaskError
from colasearch.evaluator import Evaluator
from colasearch.evaluator.base import BaseEvaluator
from colasearch.evaluator.config import EvaluatorConfig
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.tasks import load_task
from colasearch.tasks.base import Item, ModelTask, ScoringTask
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.tasks.composite import composite_task

TOKENIZER = CharTokenizer()


class CountedModelTask(ModelTask):
    """A model task that only counts its items: it has no prompt text and no per-item values."""

    name, primary_metric, metric_directions = "counted", "items", {"items": "maximize"}

    def items(self):
        return [Item(f"i{index}", index) for index in range(12)]

    def run(self, model, tokenizer, items):
        return {"items": float(len(items))}


class PlainScoringTask(ScoringTask):
    """A scoring task plug-in that implements only what ScoringTask requires."""

    name, primary_metric, metric_directions = "plain", "count", {"count": "maximize"}

    def items(self):
        return [Item(f"i{index}", index) for index in range(12)]

    def pack(self, items, tokenizer):
        return []

    def metrics(self, items, packed, scores):
        return {"count": float(len(items))}


def generation_file(path, count=12):
    path.write_text("".join(json.dumps({"id": f"g{i}", "prompt": f"w{i} ab", "answer": "zz"}) + "\n"
                            for i in range(count)))
    return path


def test_the_optional_hooks_have_defaults_on_the_base_classes(tmp_path):
    model_task, scoring_task = CountedModelTask(), PlainScoringTask()
    item = model_task.items()[0]
    for task in (model_task, scoring_task):
        assert task.needs_reference is False and task.compares_with_full is False
        assert task.item_prompt(TOKENIZER, item) is None
        assert task.relative_to_full({"items": 1.0}, {"items": 2.0}) == {"items": 1.0}
    assert scoring_task.has_item_values is False
    with pytest.raises(NotImplementedError):
        scoring_task.item_values([], [], [])
    # The built-in kinds that implement a hook are seen to have it.
    assert load_task("builtin:capitals").has_item_values and load_task("builtin:capitals").needs_reference is False
    decoding = load_task(f"jsonl:{generation_file(tmp_path / 'gen.jsonl')}", teacher_forced=False)
    assert decoding.item_prompt(TOKENIZER, decoding.items()[0]) == "w0 ab"
    assert composite_task([load_task("builtin:capitals"), decoding]).compares_with_full


def test_a_model_task_without_prompts_is_named_and_one_with_prompts_calibrates(tiny_llama, tmp_path):
    counted = Evaluator.from_options(tiny_llama, TOKENIZER, CountedModelTask(), search_size=4, heldout_size=4)
    assert counted.per_item is False
    with pytest.raises(TaskError, match="no text to calibrate on"):
        counted.calibration_batch(max_items=2)
    with pytest.raises(TaskError, match="no prompts to draft on"):
        counted.speculative_prompts("search", 2)
    decoding = load_task(f"jsonl:{generation_file(tmp_path / 'gen.jsonl')}", teacher_forced=False)
    evaluator = Evaluator.from_options(tiny_llama, TOKENIZER, decoding, search_size=4, heldout_size=4)
    prompts = [TOKENIZER(item.data.prompt).input_ids for item in evaluator.splits.search[:2]]
    assert evaluator.speculative_prompts("search", 2) == prompts
    input_ids, mask = evaluator.calibration_batch(max_items=2)
    assert input_ids.shape[0] == 2 and int(mask.sum()) == sum(len(prompt) for prompt in prompts)


def test_a_fidelity_task_beside_a_model_task_is_refused(tmp_path):
    text = tmp_path / "prose.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 30)
    with pytest.raises(TaskError, match="fidelity task"):
        composite_task([load_task(f"fidelity:{text}"), CountedModelTask()])


class WholeSplits(BaseEvaluator):
    """A stand-in that declares nothing beyond ``evaluate``: the loop reads BaseEvaluator's defaults."""

    def evaluate(self, schedule, split="search", items=None):
        return EvalResult(schedule_key="x", task="t", split=split, quality={"acc": 1.0}, ideal_speedup=1.0)


def test_an_evaluator_stand_in_inherits_whole_split_defaults():
    evaluator = WholeSplits()
    assert dict(evaluator.levels) == {} and evaluator.per_item is False and evaluator.splits is None
    assert [result.split for result in evaluator.evaluate_many([None, None], "heldout")] == ["heldout", "heldout"]
    with pytest.raises(ColasearchError, match="no token text"):  # a searcher that needs text says so in one line
        evaluator.calibration_batch()


def test_an_evaluator_without_token_text_gives_no_prior(planted):
    from colasearch.priors import compute_prior

    space, _, _ = planted
    assert compute_prior(WholeSplits(), space) is None


def test_the_evaluator_keeps_its_config_and_the_run_context_reads_it(tiny_llama):
    config = EvaluatorConfig(search_size=8, heldout_size=4, seed=2, confirm_size=3, speculative_prompts=2,
                             draft_tokens=3)
    task = load_task("builtin:capitals")
    evaluator = Evaluator(tiny_llama, TOKENIZER, task, config)
    assert evaluator.config is config and len(evaluator.splits.confirm) == 3 and evaluator.speculative == (2, 3, 16)
    context = RunContext("tiny", tiny_llama, TOKENIZER, task, evaluator, "builtin:capitals")
    assert context.evaluator_config is config
    assert (context.search_size, context.heldout_size, context.split_seed) == (8, 4, 2)
    assert context.objective("speculative", 1.25).config.draft_tokens == 3  # the acceptance the evaluator measures
    fresh = context.fresh_evaluator()
    assert fresh is not evaluator and fresh.config is config
    assert fresh.result_key(Schedule.identity(tiny_llama), "search") == \
        evaluator.result_key(Schedule.identity(tiny_llama), "search")
    with pytest.raises(ValidationError):
        Evaluator.from_options(tiny_llama, TOKENIZER, task, draft_token=3)  # misspelt: refused, not ignored
    with pytest.raises(TaskError, match="draft_tokens"):
        Evaluator(tiny_llama, TOKENIZER, task, EvaluatorConfig(draft_tokens=0))
