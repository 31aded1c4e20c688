import pytest

from colasearch.errors import ColasearchError
from colasearch.engine.session import resolve_search_metric
from colasearch.tasks import load_task


@pytest.mark.parametrize("spec, requested, expected", [
    ("builtin:capitals", None, "acc"),
    ("builtin:capitals", "primary", "acc"),
    ("builtin:capitals", "smooth", "prob"),
    ("builtin:capitals", "dense", "text_kl"),
    ("builtin:capitals", "acc_norm", "acc_norm"),
])
def test_search_metric_resolves_to_a_metric_the_task_reports(spec, requested, expected):
    task = load_task(spec)
    assert resolve_search_metric(task, requested) == expected
    assert expected in task.metric_directions


def test_smooth_follows_the_primary_metric(tmp_path):
    path = tmp_path / "hellaswag_tiny.jsonl"
    path.write_text('{"id": "a", "context": "c", "choices": ["x", "y"], "label": 0}\n')
    task = load_task(f"jsonl:{path}")
    assert task.primary_metric == "acc_norm" and resolve_search_metric(task, "smooth") == "prob_norm"


def test_smooth_without_a_smooth_counterpart_is_the_primary_metric(tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text('{"id": "1", "prompt": "x", "answer": "42"}\n')
    # Decoded generation (a regex extractor) has no smooth counterpart; teacher-forced generation has answer_prob.
    assert resolve_search_metric(load_task(f"jsonl:{path}", extract=r"(\d+)"), "smooth") == "exact_match"
    assert resolve_search_metric(load_task(f"jsonl:{path}"), "smooth") == "answer_prob"


def test_dense_without_a_dense_counterpart_is_the_primary_metric(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("a stitch in time saves nine. " * 40)
    assert resolve_search_metric(load_task(f"text:{path}"), "dense") == "perplexity"


def test_an_unknown_search_metric_names_the_known_ones():
    known = "acc, acc_norm, answer_nll, choice_kl, choice_nll, kl, prob, prob_kl, prob_norm, text_kl"
    with pytest.raises(ColasearchError, match=f"it reports: {known}"):
        resolve_search_metric(load_task("builtin:capitals"), "vibes")


@pytest.mark.parametrize("value, expected", [
    ("builtin:capitals", "builtin:capitals"),
    ("jsonl:/home/me/data/arc_easy.jsonl", "jsonl:arc_easy.jsonl"),
    (["builtin:capitals@2", "text:../corpus/wiki.txt"], ["builtin:capitals@2", "text:wiki.txt"]),
    ("/home/me/runs/run.journal", "run.journal"),
    ("sqlite:////home/me/runs/study.db", "sqlite:///study.db"),
])
def test_a_shipped_schedule_names_task_files_and_storages_without_the_authors_directories(value, expected):
    from colasearch.engine.session import portable_location

    assert portable_location(value) == expected


def test_every_metric_that_compares_with_the_full_model_asks_the_evaluator_for_its_reference(tiny_llama):
    """A search on a metric the evaluator only reports with the full model's reference must turn it on."""
    from colasearch.evaluator import Evaluator
    from colasearch.schedule import Schedule
    from colasearch.engine.session import CONTEXT_METRICS, DENSE_METRICS
    from colasearch.tasks.char_tokenizer import CharTokenizer

    task = load_task("builtin:capitals")
    plain = Evaluator.from_options(tiny_llama, CharTokenizer(), task, search_size=16, heldout_size=4)
    without = set(plain.evaluate(Schedule.identity(tiny_llama)).quality)
    reference = Evaluator.from_options(tiny_llama, CharTokenizer(), task, search_size=16, heldout_size=4, dense_kl=True,
                                       context_kl=True)
    needing = set(reference.evaluate(Schedule.identity(tiny_llama)).quality) - without
    assert needing and needing <= set(DENSE_METRICS)
    assert set(CONTEXT_METRICS) <= needing
