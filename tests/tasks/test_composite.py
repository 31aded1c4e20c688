"""Several tasks as one: per-item splits, per-task metrics, and an aggregate relative to the full model."""

import json
import math

import pytest

from colasearch.cli.app import main
from colasearch.errors import TaskError
from colasearch.evaluator import Evaluator, reference_scores
from colasearch.schedule import Schedule
from colasearch.tasks import ModelTask, ScoringTask, load_task
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.tasks.composite import parse_weighted, retained, task_spec

TOKENIZER = CharTokenizer()


def multiple_choice_file(path, count=16):
    rows = [{"id": f"q{i}", "context": f"item {i} is", "choices": [f"a{i}", f"b{i * 3}", "cc"], "label": i % 3}
            for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def text_file(path):
    path.write_text("the quick brown fox jumps over the lazy dog. " * 30)
    return path


def generation_file(path, count=12):
    path.write_text("".join(json.dumps({"id": f"g{i}", "prompt": f"w{i} ab", "answer": "zz"}) + "\n"
                            for i in range(count)))
    return path


def test_spec_syntax_weights_and_errors():
    assert parse_weighted("jsonl:a.jsonl@2") == ("jsonl:a.jsonl", 2.0)
    assert parse_weighted("jsonl:runs@home/a.jsonl") == ("jsonl:runs@home/a.jsonl", 1.0)  # an @ in a path
    assert task_spec(["builtin:capitals@3"]) == "builtin:capitals"  # one task stays itself
    spec = task_spec(["builtin:capitals@2", "builtin:sequence"], "mean")
    assert spec.startswith("composite:") and json.loads(spec.partition(":")[2])["tasks"][0] == ["builtin:capitals", 2.0]
    for bad, aggregate in ((["builtin:capitals@0", "builtin:sequence"], "mean"),
                           (["builtin:capitals@2", "builtin:sequence"], "min"),
                           (["builtin:capitals", "builtin:sequence"], "max")):
        with pytest.raises(TaskError):
            task_spec(bad, aggregate)


def test_share_of_the_full_model_is_oriented_and_guarded():
    assert retained(0.45, 0.5, "maximize") == pytest.approx(0.9)
    assert retained(20.0, 10.0, "minimize") == pytest.approx(0.5)  # perplexity doubled keeps half
    assert retained(0.0, 0.0, "maximize") == 1.0 and retained(0.0, 0.1, "maximize") == 0.0


def test_items_are_prefixed_and_metrics_are_each_tasks_own(tiny_llama, tmp_path):
    mc, text = multiple_choice_file(tmp_path / "quiz.jsonl"), text_file(tmp_path / "prose.txt")
    task = load_task([f"jsonl:{mc}@3", f"text:{text}"])
    sub_quiz, sub_prose = task.tasks
    assert isinstance(task, ScoringTask) and task.name == "quiz+prose" and task.primary_metric == "weighted_mean"
    evaluator = Evaluator.from_options(tiny_llama, TOKENIZER, task, search_size=14, heldout_size=8)
    assert {item.id.split("/")[0] for item in task.items()} == {"quiz", "prose"}
    full = evaluator.evaluate(None).quality
    assert full["weighted_mean"] == pytest.approx(1.0) and full["quiz/relative"] == pytest.approx(1.0)

    schedule = Schedule.from_layers([0, 2, 5], model=tiny_llama)
    quality = evaluator.evaluate(schedule).quality
    for name, sub in (("quiz", sub_quiz), ("prose", sub_prose)):
        own = [item.data[1] for item in evaluator.split_items("search") if item.id.startswith(name + "/")]
        packed = sub.pack(own, TOKENIZER)
        standalone = sub.metrics(own, packed, reference_scores(tiny_llama, schedule, packed))
        for metric, value in standalone.items():
            assert quality[f"{name}/{metric}"] == pytest.approx(value, abs=1e-4)
    quiz_share = retained(quality["quiz/acc"], full["quiz/acc"], "maximize")
    prose_share = full["prose/perplexity"] / quality["prose/perplexity"]
    assert quality["weighted_mean"] == pytest.approx(0.75 * quiz_share + 0.25 * prose_share)
    assert quality["weighted_mean_smooth"] == pytest.approx(
        0.75 * quality["quiz/prob"] / full["quiz/prob"] + 0.25 * prose_share)

    worst = Evaluator.from_options(tiny_llama, TOKENIZER, load_task([f"jsonl:{mc}", f"text:{text}"], aggregate="min"),
                                   search_size=14, heldout_size=8)
    assert worst.task.primary_metric == "worst"
    assert worst.evaluate(schedule).quality["worst"] == pytest.approx(min(quiz_share, prose_share))


def test_generation_sub_tasks_on_both_paths(tiny_llama, tmp_path):
    mc, gen = multiple_choice_file(tmp_path / "quiz.jsonl"), generation_file(tmp_path / "gen.jsonl")
    scoring = load_task([f"jsonl:{mc}", f"jsonl:{gen}"])
    assert isinstance(scoring, ScoringTask)  # the teacher-forced generation task packs like the others
    quality = Evaluator.from_options(tiny_llama, TOKENIZER, scoring, search_size=16, heldout_size=8).evaluate(
        Schedule.from_layers([0, 1, 4, 5], model=tiny_llama)).quality
    assert {"quiz/acc", "gen/exact_match", "gen/answer_prob", "weighted_mean"} <= set(quality)

    mixed = load_task([f"jsonl:{mc}", f"jsonl:{gen}"], aggregate="min")
    decoding = load_task(f"jsonl:{gen}", teacher_forced=False)
    from colasearch.tasks.composite import composite_task

    model_task = composite_task([load_task(f"jsonl:{mc}"), decoding])
    assert isinstance(model_task, ModelTask) and isinstance(mixed, ScoringTask)
    evaluator = Evaluator.from_options(tiny_llama, TOKENIZER, model_task, search_size=16, heldout_size=8)
    schedule = Schedule.from_layers([0, 1, 4, 5], model=tiny_llama)
    result = evaluator.evaluate(schedule).quality
    # The same items scored through the fast path give the same numbers.
    fast = Evaluator.from_options(tiny_llama, TOKENIZER,
                                  composite_task([load_task(f"jsonl:{mc}"), load_task(f"jsonl:{gen}")]), search_size=16,
                                  heldout_size=8).evaluate(schedule).quality
    assert result["gen/exact_match"] == fast["gen/exact_match"]
    assert result["quiz/acc"] == pytest.approx(fast["quiz/acc"]) and math.isfinite(result["weighted_mean"])


def test_a_split_without_items_of_a_task_is_named(tiny_llama, tmp_path):
    task = load_task([f"jsonl:{multiple_choice_file(tmp_path / 'big.jsonl', 40)}",
                      f"jsonl:{multiple_choice_file(tmp_path / 'tiny.jsonl', 2)}"])
    evaluator = Evaluator.from_options(tiny_llama, TOKENIZER, task, search_size=1, heldout_size=1)
    with pytest.raises(TaskError, match="no item of task"):
        evaluator.evaluate(None, "search")


def test_cli_refuses_bad_weights_and_aggregates_before_loading_a_model(capsys):
    for arguments in (["--task", "builtin:capitals@-1", "--task", "builtin:sequence"],
                      ["--task", "builtin:capitals", "--task", "builtin:sequence", "--task-aggregate", "max"]):
        for command in ("eval", "run"):
            with pytest.raises(SystemExit) as exit_info:
                main([command, "--model", "/no/such/model", *arguments])
            assert exit_info.value.code == 2
            error = capsys.readouterr().err
            assert ("weight" in error or "aggregate" in error) and "Traceback" not in error


@pytest.mark.integration
def test_eval_of_two_tasks_on_smollm(capsys, smollm):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--task", "builtin:capitals@2", "--task", "builtin:sequence", "--search-size", "24",
              "--heldout-size", "16", "--no-measure", "--json"])
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "capitals+sequence" and report["primary_metric"] == "weighted_mean"
    assert report["full"]["heldout"]["weighted_mean"] == pytest.approx(1.0)
    assert 0.0 < report["full"]["heldout"]["capitals/acc"] <= 1.0


def test_a_search_maximizes_the_aggregate(tiny_llama, tmp_path):
    from colasearch.engine.session import RunContext, resolve_search_metric, search_with

    specs = [f"jsonl:{multiple_choice_file(tmp_path / 'quiz.jsonl')}@2", f"jsonl:{generation_file(tmp_path / 'gen.jsonl')}"]
    task = load_task(specs)
    evaluator = Evaluator.from_options(tiny_llama, TOKENIZER, task, search_size=16, heldout_size=8)
    context = RunContext("tiny", tiny_llama, TOKENIZER, task, evaluator, task_spec(specs),
                         search_metric=resolve_search_metric(task, "smooth"))
    assert context.objective_metric == "weighted_mean_smooth" and context.metric == "weighted_mean"
    outcome, _ = search_with(context, "random", budget=3, target_speedup=1.25, seed=0)
    assert outcome.evaluations == 3
    assert all(0.0 <= result.quality["weighted_mean"] for _, result in outcome.records)
    assert load_task(context.task_spec).config_key() == task.config_key()  # what Ray workers rebuild
