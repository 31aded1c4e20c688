import pytest

from colasearch.cost import CostModel
from colasearch.errors import ScheduleError, TaskError
from colasearch.evaluator import Evaluator
from colasearch.schedule import Schedule
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer

TOKENIZER = CharTokenizer()


def make(model, **options):
    return Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=8, heldout_size=6,
                                  **options)


def test_evaluate_reports_quality_cost_and_identity(tiny_llama):
    evaluator = make(tiny_llama)
    schedule = Schedule.from_layers([0, 1, 5], model=tiny_llama)
    result = evaluator.evaluate(schedule, "heldout")
    assert set(result.quality) == {"acc", "acc_norm", "prob", "prob_norm", "answer_nll", "choice_nll"}
    assert result.split == "heldout" and result.task == "capitals"
    assert result.ideal_speedup == pytest.approx(CostModel.from_model(tiny_llama).ideal_speedup(schedule))
    assert result.ideal_speedup > 1.5 and result.seconds > 0
    assert isinstance(evaluator.cost_model, CostModel)


def test_evaluate_many_keeps_the_callers_order(tiny_llama):
    evaluator = make(tiny_llama)
    schedules = [Schedule.from_layers(chain, model=tiny_llama) for chain in ([5, 4], [0, 1, 2], [0, 1])] + [None]
    many = evaluator.evaluate_many(schedules)
    assert [result.schedule_key for result in many] == [s.key for s in schedules[:3]] + ["full"]
    alone = [make(tiny_llama).evaluate(schedule) for schedule in schedules]
    assert [result.quality for result in many] == [result.quality for result in alone]


def test_bad_schedules_and_splits_are_refused(tiny_llama):
    evaluator = make(tiny_llama)
    with pytest.raises(ScheduleError, match="out of range"):
        evaluator.evaluate(Schedule.from_layers([0, 9]))
    with pytest.raises(TaskError, match="unknown split"):
        evaluator.evaluate(None, "train")


def test_calibration_batch_is_left_padded_search_text(tiny_llama):
    evaluator = make(tiny_llama)
    input_ids, mask = evaluator.calibration_batch(max_items=5)
    assert input_ids.shape == mask.shape and input_ids.shape[0] == 5
    assert bool((mask[:, -1] == 1).all())  # left padding: the last column is always real
    first = evaluator.split_items("search")[0].data
    expected = TOKENIZER(first.context + "\nAnswer:").input_ids + TOKENIZER(" " + first.choices[0]).input_ids
    assert input_ids[0, mask[0].bool()].tolist() == expected


def test_stats_count_work(tiny_llama):
    evaluator = make(tiny_llama)
    evaluator.evaluate(None)
    evaluator.evaluate(None)
    stats = evaluator.stats
    assert stats["computed"] == 1 and stats["result_cache_hits"] == 1 and stats["entries_run"] >= 6
    assert all(isinstance(value, int) for value in stats.values())


def test_the_confirmation_split_is_scored_on_any_multiple_of_sixteen_items(tiny_llama):
    evaluator = make(tiny_llama, confirm_size=40)
    assert evaluator.levels["confirm"] == (16, 32, 40) and evaluator.levels["heldout"] == (6,)
    schedule = Schedule.from_layers([0, 1, 5], model=tiny_llama)
    part, whole = evaluator.evaluate(schedule, "confirm", items=32), evaluator.evaluate(schedule, "confirm")
    assert part.items == 32 and whole.items == 40
    assert whole.per_item["acc"][:32] == part.per_item["acc"]   # nested: the first 32 items
    with pytest.raises(TaskError, match="has no items"):
        make(tiny_llama).evaluate(schedule, "confirm")
