"""Generation tasks decided by one teacher-forced forward agree with model.generate item by item."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colasearch.evaluator import Evaluator
from colasearch.runtime import scheduled
from colasearch.schedule import Schedule
from colasearch.tasks import ModelTask, ScoringTask, load_task
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.tasks.generation import could_normalise_to, normalise

TOKENIZER = CharTokenizer()


def write_task(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def generate_matches(task, model, tokenizer, items, schedule=None):
    """The reference: exact match of plain ``model.generate`` completions."""
    with scheduled(model, schedule):
        completions = task.completions(model, tokenizer, items)
    return [task.is_match(text, item.data.answer) for text, item in zip(completions, items)]


def teacher_forced_matches(evaluator, schedule, split="search"):
    task = evaluator.task
    packed, scores = evaluator.packed(split), evaluator._fast_scores(schedule, split)
    with scheduled(evaluator.model, schedule):
        return task.outcomes(evaluator.model, evaluator.tokenizer, evaluator.split_items(split), packed, scores)


def answers_around(completions):
    """Answers that hit, nearly hit and miss the model's own greedy completions in different ways."""
    answers = []
    for index, text in enumerate(completions):
        line = text.strip().split("\n")[0]
        variants = [line, line[:2], "the " + line.upper(), line + "x", "zzz", line[:-1] + "."]
        answers.append(variants[index % len(variants)])
    return answers


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_teacher_forced_exact_match_equals_generate_item_by_item(family, tmp_path):
    from colasearch.testing import make_tiny_model

    model = make_tiny_model(family)
    prompts = [{"id": str(i), "prompt": f"q{i} {'ab' * (i % 4)}:"} for i in range(36)]
    probe = load_task(f"jsonl:{write_task(tmp_path / 'probe.jsonl', [{**p, 'answer': 'x'} for p in prompts])}",
                      max_new_tokens=5)
    completions = probe.completions(model, TOKENIZER, probe.items())
    rows = [{**prompt, "answer": answer} for prompt, answer in zip(prompts, answers_around(completions))]
    task = load_task(f"jsonl:{write_task(tmp_path / 'gen.jsonl', rows)}", max_new_tokens=5)
    assert isinstance(task, ScoringTask)
    evaluator = Evaluator.from_options(model, TOKENIZER, task, search_size=30, heldout_size=6)
    items = evaluator.split_items("search")
    for schedule in (None, Schedule.from_layers([0, 2, 2, 5], model=model)):
        expected = generate_matches(task, model, TOKENIZER, items, schedule)
        assert teacher_forced_matches(evaluator, schedule) == expected
        assert evaluator.evaluate(schedule).quality["exact_match"] == pytest.approx(sum(expected) / len(expected))
    assert any(generate_matches(task, model, TOKENIZER, items)), "some answers should be hits"
    # Most items are decided by the forward alone; only the undecided ones were decoded.
    assert task.counts["teacher_forced"] > task.counts["decoded"] > 0


class Characters:
    """Any character as its own token (id = code point + 3; 0-2 are special), so newlines round-trip."""

    eos_token_id = 2

    def __call__(self, text, add_special_tokens=True):
        return type("Encoding", (), {"input_ids": [ord(char) + 3 for char in text]})

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(token - 3) for token in ids if token >= 3)


def test_outcome_rules_follow_the_exact_match_of_the_first_line(tmp_path):
    task = load_task(f"jsonl:{write_task(tmp_path / 'g.jsonl', [{'prompt': 'p', 'answer': 'Paris'}])}",
                     max_new_tokens=12)
    characters = Characters()

    def outcome(text, complete=False, tail=()):
        return task.outcome(characters(text).input_ids + list(tail), "Paris", characters, frozenset({2}), complete)

    assert outcome(" Paris.\nmore") is True           # the first line is closed
    assert outcome("\n\n Paris\n") is True          # leading blank lines are stripped
    assert outcome(" London\n") is False
    assert outcome(" the Paris") is None               # could still end the line here
    assert outcome(" Paris, France") is False          # no continuation can normalise to "paris"
    assert outcome(" Lon") is False
    assert outcome(" Paris", complete=True) is True
    assert outcome(" Paris", tail=[2, 40]) is True     # the end token ends the completion
    assert outcome(" Paris and on and on") is False    # cut at max_new_tokens: " Paris and o"
    assert outcome(" Paris.", tail=[43] * 5) is True    # twelve tokens: " Paris.(((((" normalises to "paris"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aAnThe PrisΣς.,-_'\n\t", max_size=14), st.integers(min_value=0, max_value=14))
def test_a_text_that_normalises_to_the_target_is_never_ruled_out_early(text, cut):
    target = normalise(text)
    assert could_normalise_to(text[:cut], target)


def test_could_normalise_to_rules_out_real_misses():
    assert could_normalise_to("The Par", "paris") and could_normalise_to("Pa-r", "paris")
    assert not could_normalise_to("London", "paris") and not could_normalise_to("Paris is", "paris")
    assert could_normalise_to("an apple", "apple") and not could_normalise_to("and", "apple")


def test_extractor_or_switch_decodes_every_item(tiny_llama, tmp_path):
    path = write_task(tmp_path / "g.jsonl", [{"id": str(i), "prompt": f"q{i}", "answer": "1"} for i in range(8)])
    assert isinstance(load_task(f"jsonl:{path}", extract=r"(\d+)"), ModelTask)
    decoding = load_task(f"jsonl:{path}", teacher_forced=False, max_new_tokens=4)
    scored = load_task(f"jsonl:{path}", max_new_tokens=4)
    assert isinstance(decoding, ModelTask) and isinstance(scored, ScoringTask)
    assert scored.config_key() != decoding.config_key()
    schedule = Schedule.from_layers([0, 1, 3, 5], model=tiny_llama)
    for variant in (None, schedule):
        first = Evaluator.from_options(tiny_llama, TOKENIZER, decoding, search_size=4, heldout_size=4).evaluate(variant)
        second = Evaluator.from_options(tiny_llama, TOKENIZER, scored, search_size=4, heldout_size=4).evaluate(variant)
        assert first.quality["exact_match"] == second.quality["exact_match"]
        assert 0.0 <= second.quality["answer_prob"] <= 1.0


def test_generation_settings_that_change_greedy_decode_every_item(tiny_llama, tmp_path):
    rows = [{"id": str(i), "prompt": f"w{i} ab", "answer": "zz"} for i in range(10)]
    task = load_task(f"jsonl:{write_task(tmp_path / 'g.jsonl', rows)}", max_new_tokens=4)
    evaluator = Evaluator.from_options(tiny_llama, TOKENIZER, task, search_size=6, heldout_size=4)
    tiny_llama.generation_config.repetition_penalty = 1.5
    try:
        items = evaluator.split_items("search")
        expected = generate_matches(task, tiny_llama, TOKENIZER, items)
        before = task.counts["teacher_forced"]
        assert teacher_forced_matches(evaluator, None) == expected
        assert task.counts["teacher_forced"] == before  # nothing was read off the forward
    finally:
        tiny_llama.generation_config.repetition_penalty = 1.0


@pytest.mark.integration
def test_embedded_model_teacher_forced_equals_generate(smollm, tmp_path):
    model, tokenizer = smollm
    facts = [("The capital of France is", "Paris"), ("The capital of Italy is", "Rome"),
             ("Two plus two equals", "four"), ("The opposite of hot is", "cold"),
             ("The first month of the year is", "January"), ("The color of the sky is", "blue"),
             ("Water freezes at zero degrees", "Celsius"), ("The largest planet is", "Jupiter"),
             ("Monday, Tuesday,", "Wednesday"), ("One, two, three,", "four"),
             ("The author of Hamlet is William", "Shakespeare"), ("Question: What is 3+4?\nAnswer:", "7")]
    rows = [{"id": str(i), "prompt": prompt, "answer": answer} for i, (prompt, answer) in enumerate(facts)]
    task = load_task(f"jsonl:{write_task(tmp_path / 'facts.jsonl', rows)}", max_new_tokens=8)
    evaluator = Evaluator.from_options(model, tokenizer, task, search_size=11, heldout_size=1)
    items = evaluator.split_items("search")
    skipping = Schedule.from_layers([layer for layer in range(30) if layer not in (20, 24, 27)], model=model)
    for schedule in (None, skipping):
        assert teacher_forced_matches(evaluator, schedule) == generate_matches(task, model, tokenizer, items, schedule)
