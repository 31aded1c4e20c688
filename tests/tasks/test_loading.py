import json

import pytest

from colasearch.cli.app import main
from colasearch.errors import TaskError
from colasearch.tasks import DEFAULT_TASK, Task, load_task
from colasearch.tasks.generation import GenerationBase
from colasearch.tasks.multiple_choice import MultipleChoiceTask
from colasearch.tasks.perplexity import PerplexityTask


def write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n")
    return path


def test_builtin_specs_and_bare_names_load_the_same_task():
    assert load_task("builtin:capitals").config_key() == load_task("capitals").config_key()
    task = load_task(DEFAULT_TASK)
    assert isinstance(task, Task) and task.metric_directions[task.primary_metric] == "maximize"


def test_jsonl_kind_is_detected_from_its_fields(tmp_path):
    mc = write_jsonl(tmp_path / "mc.jsonl", [{"id": "a", "context": "Q", "choices": ["x", "y"], "label": 1}] * 1)
    gen = write_jsonl(tmp_path / "gen.jsonl", [{"id": "a", "prompt": "2+2=", "answer": "4"}])
    assert isinstance(load_task(f"jsonl:{mc}"), MultipleChoiceTask)
    task = load_task(f"jsonl:{gen}", max_new_tokens=4)
    assert isinstance(task, GenerationBase) and task.options.max_new_tokens == 4


def test_shared_data_uses_the_documented_joins(shared_data):
    arc = load_task(f"jsonl:{shared_data / 'arc_easy.jsonl'}")
    hellaswag = load_task(f"jsonl:{shared_data / 'hellaswag.jsonl'}")
    assert arc.join == "\nAnswer: " and arc.primary_metric == "acc" and len(arc.items()) == 2000
    assert hellaswag.join == " " and hellaswag.primary_metric == "acc_norm"
    assert isinstance(load_task(f"text:{shared_data / 'wikitext2_test_raw.txt'}"), PerplexityTask)


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ('{"context": "Q", "choices": ["a", "b"], "label": 0}\n{"context": "Q", "choices": ["a", "b"\n', ":2: malformed JSON"),
    ('{"context": "Q", "choices": ["a", "b"], "label": 2}\n', "label 2 is out of range"),
    ('{"context": "Q", "label": 0}\n', "missing field 'choices'"),
    ('{"prompt": "Q"}\n', "missing field 'answer'"),
    ('[1, 2]\n', "expected a JSON object"),
])
def test_bad_task_files_give_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TaskError, match=message) as error:
        load_task(f"jsonl:{path}")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("spec, message", [
    ("nope:thing", "unknown task kind"),
    ("builtin:nope", "unknown built-in task"),
    ("jsonl:/does/not/exist.jsonl", "not found"),
    ("jsonl:", "names no jsonl argument"),
])
def test_bad_specs(spec, message):
    with pytest.raises(TaskError, match=message):
        load_task(spec)


def test_unknown_or_invalid_options_are_refused():
    with pytest.raises(TaskError, match="option bogus"):
        load_task("builtin:capitals", bogus=1)
    with pytest.raises(TaskError, match="option max_length"):
        load_task("builtin:capitals", max_length=0)


def test_cli_bad_task_file_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"context": "Q", "choices": ["a", "b"], "label": 7}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--task", f"jsonl:{path}", "--no-measure"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "out of range" in err


def test_lm_eval_tasks_need_the_optional_extra():
    from colasearch.tasks.lm_eval_adapter import LmEvalTask, lm_eval_available

    if lm_eval_available():
        assert isinstance(load_task("lm-eval:arc_easy", num_items=10), LmEvalTask)
    else:
        with pytest.raises(TaskError, match=r"pip install 'colasearch\[lm-eval\]'"):
            load_task("lm-eval:arc_easy")
