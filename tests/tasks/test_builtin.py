import pytest

from colasearch.tasks import BUILTIN_TASKS, DEFAULT_TASK, load_task


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_builtin_tasks_are_deterministic_and_well_formed(name):
    first, second = load_task(name), load_task(name)
    assert [(item.id, item.data) for item in first.items()] == [(item.id, item.data) for item in second.items()]
    assert len(first.items()) >= 200
    assert len({item.id for item in first.items()}) == len(first.items())
    for item in first.items():
        question = item.data
        assert len(question.choices) == 4 and len(set(question.choices)) == 4
        assert 0 <= question.label < 4


def test_answers_are_right():
    addition = load_task("addition").items()
    for item in addition[:50]:
        left, right = item.data.context.splitlines()[-1].rstrip(" =").split(" + ")
        assert item.data.choices[item.data.label] == str(int(left) + int(right))
    capitals = {item.id: item.data for item in load_task("capitals").items()}
    question = capitals["capital-of-France"]
    assert question.choices[question.label] == "Paris"


def test_default_task_is_a_builtin():
    assert DEFAULT_TASK.removeprefix("builtin:") in BUILTIN_TASKS


@pytest.mark.integration
def test_smollm_is_well_above_chance_on_every_builtin(smollm):
    from colasearch.evaluator import Evaluator

    model, tokenizer = smollm
    for name in sorted(BUILTIN_TASKS):
        evaluator = Evaluator.from_options(model, tokenizer, load_task(name), search_size=12, heldout_size=1)
        assert evaluator.evaluate(None).quality["acc"] >= 0.5, name  # chance is 0.25
