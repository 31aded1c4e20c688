import math

import pytest
import torch

from colasearch.evaluator import Evaluator
from colasearch.schedule import Schedule
from colasearch.tasks import SequenceScores, load_task
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.tasks.generation import normalise

TOKENIZER = CharTokenizer()


def test_multiple_choice_packs_each_choice_after_one_shared_context():
    task = load_task("builtin:capitals")
    item = task.items()[0]
    (sequence,) = task.pack([item], TOKENIZER)
    context = TOKENIZER(item.data.context + "\nAnswer:").input_ids
    assert sequence.tokens[:len(context)] == context and sequence.segments.count(0) == len(context)
    for number, choice in enumerate(item.data.choices, start=1):
        plain, _ = sequence.unpacked(number)
        assert plain == context + TOKENIZER(" " + choice).input_ids
    assert len(sequence.tokens) == len(context) + sum(len(" " + choice) for choice in item.data.choices)


def test_metric_sign_orients_differences_so_that_positive_is_better(tmp_path):
    (tmp_path / "text.txt").write_text("some text. " * 20)
    capitals, text = load_task("builtin:capitals"), load_task(f"text:{tmp_path / 'text.txt'}")
    assert capitals.metric_sign("acc") == 1.0 and text.metric_sign("perplexity") == -1.0
    assert {task.metric_sign(metric) for task in (capitals, text) for metric in task.metric_directions} == {1.0, -1.0}


def test_acc_and_acc_norm_from_loglikelihoods():
    task = load_task("builtin:capitals")
    item = task.items()[0]
    (sequence,) = task.pack([item], TOKENIZER)
    # Every token of the right choice scores -0.1, others -1: both metrics pick the label.
    logprobs = torch.tensor([-0.1 if segment == item.data.label + 1 else -1.0 for segment in sequence.target_segments])
    scores = [SequenceScores(logprobs, torch.zeros_like(logprobs, dtype=torch.long))]
    metrics = task.metrics([item], [sequence], scores)
    assert metrics["acc"] == 1.0 and metrics["acc_norm"] == 1.0
    # prob: the right choice's softmax share over the choices' summed log-likelihoods.
    totals = [sum(-0.1 if number == item.data.label + 1 else -1.0 for segment in sequence.target_segments
                  if segment == number) for number in range(1, len(item.data.choices) + 1)]
    expected = math.exp(totals[item.data.label]) / sum(math.exp(total) for total in totals)
    assert metrics["prob"] == pytest.approx(expected) and 0.25 < metrics["prob_norm"] < 1.0


def first_capitals_item():
    """(task, item, packed sequence) of the first built-in capitals question."""
    task = load_task("builtin:capitals")
    item = task.items()[0]
    (sequence,) = task.pack([item], TOKENIZER)
    return task, item, sequence


def choice_logprobs(sequence, item, right: float, wrong: float = -1.0) -> torch.Tensor:
    """Every token of the right choice scores ``right``, every other choice's token ``wrong``."""
    label = item.data.label + 1
    return torch.tensor([right if segment == label else wrong for segment in sequence.target_segments])


def scored_metrics(task, item, sequence, right: float, wrong: float) -> dict[str, float]:
    """The task's metrics when the right choice's tokens score ``right`` and every other token ``wrong``."""
    logprobs = choice_logprobs(sequence, item, right, wrong)
    return task.metrics([item], [sequence], [SequenceScores(logprobs, torch.zeros_like(logprobs, dtype=torch.long))])


def test_prob_is_smooth_where_acc_is_a_step():
    task, item, sequence = first_capitals_item()

    def metrics(right, wrong):
        return scored_metrics(task, item, sequence, right, wrong)

    slightly_wrong, very_wrong = metrics(-1.0, -0.99), metrics(-3.0, -0.5)
    assert slightly_wrong["acc"] == very_wrong["acc"] == 0.0
    assert slightly_wrong["prob"] > very_wrong["prob"] and slightly_wrong["prob_norm"] > very_wrong["prob_norm"]


def test_answer_and_choice_nll_are_log_losses_of_the_right_choice():
    task, item, sequence = first_capitals_item()

    def metrics(right, wrong):
        return scored_metrics(task, item, sequence, right, wrong)

    # The answer's loss per token is the per-token log-probability the right choice's tokens score.
    assert metrics(-0.3, -1.0)["answer_nll"] == pytest.approx(0.3)
    # choice_nll is -log prob, and it keeps growing with the margin of a mistake where prob saturates near 0.
    scored = metrics(-0.3, -1.0)
    assert scored["choice_nll"] == pytest.approx(-math.log(scored["prob"]))
    confident, very_confident = metrics(-3.0, -0.5), metrics(-6.0, -0.5)
    assert very_confident["choice_nll"] - confident["choice_nll"] > 1.0
    assert confident["prob"] - very_confident["prob"] < 0.01


def test_choice_kl_compares_the_decision_over_choices_with_the_full_models():
    task, item, sequence = first_capitals_item()
    label = item.data.label + 1

    def choice_kl(full_right, own_right):
        own = choice_logprobs(sequence, item, own_right)
        score = SequenceScores(own, torch.zeros_like(own, dtype=torch.long), kl=torch.zeros_like(own),
                               reference_logprobs=choice_logprobs(sequence, item, full_right))
        return task.metrics([item], [sequence], [score])["choice_kl"]

    assert choice_kl(-0.2, -0.2) == pytest.approx(0.0, abs=1e-12)
    # The same choice distribution away from the full model's in either direction costs more the farther it is.
    assert 0 < choice_kl(-0.2, -0.5) < choice_kl(-0.2, -2.0)
    assert choice_kl(-2.0, -0.2) > 0
    # Against the closed form of KL between two softmaxes over the choices' summed log-likelihoods.
    counts = [sequence.target_segments.count(number) for number in range(1, len(item.data.choices) + 1)]

    def distribution(right):
        totals = [(right if number == label else -1.0) * count for number, count in enumerate(counts, start=1)]
        top = max(totals)
        weights = [math.exp(total - top) for total in totals]
        return [weight / sum(weights) for weight in weights]

    full, own = distribution(-0.2), distribution(-2.0)
    assert choice_kl(-0.2, -2.0) == pytest.approx(sum(p * math.log(p / q) for p, q in zip(full, own)))


def test_generation_exact_match_normalises_and_extracts(tmp_path):
    assert normalise("The  Answer, is: 4!") == "answer is 4"
    path = tmp_path / "gen.jsonl"
    path.write_text('{"id": "1", "prompt": "x", "answer": "42"}\n{"id": "2", "prompt": "y", "answer": "7"}\n')
    task = load_task(f"jsonl:{path}", extract=r"answer is (\d+)")
    assert task.extract("so the answer is 42.") == "42" and task.extract("no number") == ""
    with pytest.raises(Exception, match="invalid regex"):
        load_task(f"jsonl:{path}", extract="(")


def test_generation_runs_on_a_tiny_model_and_matches_its_own_greedy_output(tiny_llama, tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(f'{{"id": "{i}", "prompt": "q{i} ", "answer": "zz"}}\n' for i in range(6)))
    task = load_task(f"jsonl:{path}", max_new_tokens=3)
    items = task.items()
    completions = task.completions(tiny_llama, TOKENIZER, items)
    assert len(completions) == 6 and all(len(text) <= 3 for text in completions)
    # A task whose answers are the model's own greedy completions scores 1.
    first_lines = [text.strip().split("\n")[0] for text in completions]
    echo = tmp_path / "echo.jsonl"
    echo.write_text("".join(f'{{"id": "{i}", "prompt": "q{i} ", "answer": {first_lines[i]!r}}}\n'.replace("'", '"')
                            for i in range(6)))
    echoed = load_task(f"jsonl:{echo}", max_new_tokens=3)
    evaluator = Evaluator.from_options(tiny_llama, TOKENIZER, echoed, search_size=3, heldout_size=3)
    assert evaluator.evaluate(None).quality["exact_match"] == 1.0


def test_perplexity_and_fidelity_on_a_tiny_model(tiny_model, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    perplexity = Evaluator.from_options(tiny_model, TOKENIZER, load_task(f"text:{path}", window=32, stride=16),
                                        search_size=4, heldout_size=4).evaluate(None).quality
    assert 1.0 < perplexity["perplexity"] < 1e6 and math.isclose(math.log(perplexity["perplexity"]), perplexity["nll"])

    evaluator = Evaluator.from_options(tiny_model, TOKENIZER, load_task(f"fidelity:{path}", window=32), search_size=4,
                                       heldout_size=4)
    full = evaluator.evaluate(None).quality
    assert full["top1_agreement"] == 1.0 and abs(full["kl"]) < 1e-5
    skipping = evaluator.evaluate(Schedule.from_layers([0, 2, 5], model=tiny_model)).quality
    assert skipping["kl"] > 1e-3 and skipping["top1_agreement"] < 1.0


def test_fidelity_reads_text_fields_of_jsonl(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "hello there"}\n{"prompt": "general kenobi"}\n')
    assert "general kenobi" in load_task(f"fidelity:{path}").windows.text
    path.write_text('{"label": 1}\n')
    with pytest.raises(Exception, match="no text field"):
        load_task(f"fidelity:{path}")
