"""The evaluator's own chain execution equals model(...) under apply_schedule, per continuation."""

import pytest
import torch

from colasearch.evaluator import Evaluator, reference_scores
from colasearch.schedule import Schedule
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer

TOKENIZER = CharTokenizer()
CHAINS = [
    None,
    [0, 1, 2, 3, 4, 5],
    [0, 1, {"layer": 2, "run": "attn"}, 2, {"layer": 3, "run": "mlp"}, 5, 5],
    [{"layer": 3, "run": "mlp"}, 4, 1, 5],
    [0, 0, 3, 2, 5],
]


@pytest.mark.parametrize("chain", CHAINS, ids=lambda chain: "full" if chain is None else str(chain))
def test_packed_multiple_choice_matches_plain_forward(tiny_model, chain):
    schedule = None if chain is None else Schedule.from_layers(chain, model=tiny_model)
    evaluator = Evaluator.from_options(tiny_model, TOKENIZER, load_task("builtin:capitals"), search_size=8,
                                       heldout_size=2, batch_tokens=300)
    assert len(evaluator.batches("search")) > 1  # several batches of different widths are exercised
    fast = evaluator._fast_scores(schedule, "search")
    plain = reference_scores(tiny_model, schedule, evaluator.packed("search"))
    for mine, theirs in zip(fast, plain):
        torch.testing.assert_close(mine.target_logprobs, theirs.target_logprobs, atol=2e-5, rtol=0)
        assert torch.equal(mine.argmax, theirs.argmax)


def test_windows_match_plain_forward_and_reference_kl(tiny_model, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("a stitch in time saves nine; " * 30)
    task = load_task(f"fidelity:{path}", window=24, stride=12)
    schedule = Schedule.from_layers([0, 2, 2, 5], model=tiny_model)
    evaluator = Evaluator.from_options(tiny_model, TOKENIZER, task, search_size=5, heldout_size=3)
    fast = evaluator._fast_scores(schedule, "search")
    plain = reference_scores(tiny_model, schedule, evaluator.packed("search"), with_reference=True)
    for mine, theirs in zip(fast, plain):
        torch.testing.assert_close(mine.target_logprobs, theirs.target_logprobs, atol=2e-5, rtol=0)
        torch.testing.assert_close(mine.kl, theirs.kl, atol=2e-5, rtol=1e-4)
        assert torch.equal(mine.reference_argmax, theirs.reference_argmax)
        torch.testing.assert_close(mine.reference_logprobs, theirs.reference_logprobs, atol=2e-5, rtol=0)


def test_context_kl_of_multiple_choice_matches_the_plain_path(tiny_model):
    schedule = Schedule.from_layers([0, 2, 2, 5], model=tiny_model)
    evaluator = Evaluator.from_options(tiny_model, TOKENIZER, load_task("builtin:capitals"), search_size=8,
                                       heldout_size=2, batch_tokens=300, context_kl=True)
    fast = evaluator._fast_scores(schedule, "search")
    plain = reference_scores(tiny_model, schedule, evaluator.packed("search"), with_reference=True, context_kl=True)
    for mine, theirs, sequence in zip(fast, plain, evaluator.packed("search")):
        # Every context token but the last (already scored) predicts the next one.
        assert len(mine.context_kl) == len(sequence.context_rows()) > 0
        torch.testing.assert_close(mine.context_kl, theirs.context_kl, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(mine.kl, theirs.kl, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe"])
def test_moe_layers_on_the_fast_path_match_the_plain_path(family):
    from colasearch.testing import make_tiny_model

    model = make_tiny_model(family)
    schedule = Schedule.from_layers([0, 1, {"layer": 2, "run": "mlp"}, 4, 4, 5], model=model)
    fast = Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=4, heldout_size=2)
    plain = Evaluator.from_options(model, TOKENIZER, load_task("builtin:capitals"), search_size=4, heldout_size=2)
    plain.fast = False  # what families outside the fast path get
    assert fast.fast
    mine, theirs = fast._fast_scores(schedule, "search"), reference_scores(model, schedule, plain.packed("search"))
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a.target_logprobs, b.target_logprobs, atol=2e-5, rtol=0)
    fast_quality, plain_quality = fast.evaluate(schedule).quality, plain.evaluate(schedule).quality
    assert fast_quality["acc"] == plain_quality["acc"] and fast_quality["acc_norm"] == plain_quality["acc_norm"]
    # The log losses (answer_nll, choice_nll) are per-token log-probabilities, so as close as those are.
    assert fast_quality == pytest.approx(plain_quality, abs=2e-5)


@pytest.mark.integration
def test_smollm_fast_path_matches_plain_on_arc(shared_data, smollm):
    model, tokenizer = smollm
    task = load_task(f"jsonl:{shared_data / 'arc_easy.jsonl'}")
    evaluator = Evaluator.from_options(model, tokenizer, task, search_size=2, heldout_size=1)
    schedule = Schedule.from_layers([0, 1, 2, 4, {"layer": 5, "run": "attn"}, *range(6, 28), 29], model=model)
    fast = evaluator._fast_scores(schedule, "search")
    plain = reference_scores(model, schedule, evaluator.packed("search"))
    for mine, theirs in zip(fast, plain):
        torch.testing.assert_close(mine.target_logprobs, theirs.target_logprobs, atol=1e-4, rtol=0)
