"""ColasearchLM against HFLM itself: shared contexts run once and batched generation give HFLM's answers."""

import random

import pytest
import torch

pytest.importorskip("lm_eval", reason="needs the lm-eval extra: pip install 'colasearch[lm-eval]'")

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

from colasearch.runtime import scheduled  # noqa: E402
from colasearch.schedule import Schedule  # noqa: E402
from colasearch.tasks.lm_eval_model import ColasearchLM  # noqa: E402
from colasearch.testing import make_tiny_model, make_tiny_tokenizer  # noqa: E402

CHAINS = [None, [0, 2, 2, 5]]  # the full model, and a schedule with a repeated layer (its own cache slots)
CHAIN_IDS = ["full", "schedule"]


class TokenCounter:
    """Tokens embedded by the model: what each path computes."""

    def __init__(self, model):
        self.tokens = 0
        model.get_input_embeddings().register_forward_hook(self)

    def __call__(self, module, inputs, output):
        self.tokens += inputs[0].numel()


def multiple_choice_requests(model, rng, contexts=5, choices=4):
    """Token requests as lm-eval builds them for multiple choice: one per choice, sharing its context;
    one choice per context is the model's own greedy continuation, so ``is_greedy`` is sometimes true.
    Two single requests (a context seen once) go the plain way."""
    requests = []
    for _ in range(contexts):
        context = [rng.randrange(4, 96) for _ in range(rng.randint(12, 20))]
        with torch.no_grad():
            greedy = model(torch.tensor([context])).logits[0, -1].argmax().item()
        options = [[greedy]] + [[rng.randrange(4, 96) for _ in range(rng.randint(1, 3))] for _ in range(choices - 1)]
        requests.extend(((None, None), context, option) for option in options)
    requests.extend(((None, None), [rng.randrange(4, 96) for _ in range(9)], [rng.randrange(4, 96)]) for _ in range(2))
    rng.shuffle(requests)
    return requests


@pytest.mark.parametrize("family", ["llama", "qwen2"])  # qwen2: sliding-window layers, window 8 < the contexts
@pytest.mark.parametrize("chain", CHAINS, ids=CHAIN_IDS)
def test_shared_contexts_score_as_hflm_does(family, chain):
    model = make_tiny_model(family)
    tokenizer = make_tiny_tokenizer()
    lm = ColasearchLM(pretrained=model, tokenizer=tokenizer, batch_size=3)
    schedule = None if chain is None else Schedule.from_layers(chain, model=model)
    with scheduled(model, schedule):
        requests = multiple_choice_requests(model, random.Random(1))
        counter = TokenCounter(model)
        plain = HFLM._loglikelihood_tokens(lm, requests)  # HFLM's own path on the very same object
        plain_tokens, counter.tokens = counter.tokens, 0
        cached = lm._loglikelihood_tokens(requests)
    assert [greedy for _, greedy in cached] == [greedy for _, greedy in plain]
    assert any(greedy for _, greedy in cached)
    assert [value for value, _ in cached] == pytest.approx([value for value, _ in plain], abs=1e-4)
    # Each shared context ran once instead of once per choice.
    assert counter.tokens < plain_tokens / 2


def generation_requests(lm, rng, count=7):
    """Prompts of different lengths, each with its own stop string (a word of its own greedy text, so the
    stop really cuts it) or none, and its own token budget."""
    prompts = [" ".join(f"w{rng.randrange(4, 96)}" for _ in range(rng.randint(3, 12))) for _ in range(count)]
    free = [HFLM.generate_until(lm, [Instance("generate_until", {}, (prompt, {"until": [], "max_gen_toks": 8}), 0)])[0]
            for prompt in prompts[:3]]
    requests = []
    for index, prompt in enumerate(prompts):
        until = [free[index].split()[3]] if index < 3 and len(free[index].split()) > 3 else ["w99"]
        kwargs = {"until": until, "max_gen_toks": rng.choice([2, 5, 8])}
        if index == 4:
            kwargs = {"max_gen_toks": 6, "do_sample": False}  # no stop string but the end of text
        requests.append(Instance("generate_until", {}, (prompt, kwargs), index))
    return requests


@pytest.mark.parametrize("chain", CHAINS, ids=CHAIN_IDS)
def test_batched_generation_equals_one_by_one(chain):
    model = make_tiny_model("llama")
    tokenizer = make_tiny_tokenizer()
    schedule = None if chain is None else Schedule.from_layers(chain, model=model)
    batched_lm = ColasearchLM(pretrained=model, tokenizer=tokenizer, batch_size=4)
    single_lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
    with scheduled(model, schedule):
        requests = generation_requests(single_lm, random.Random(2))
        calls = []
        generate = model.generate
        model.generate = lambda *args, **kwargs: calls.append(kwargs["input_ids"].shape[0]) or generate(*args, **kwargs)
        try:
            batched = batched_lm.generate_until(requests)
        finally:
            del model.generate
        one_by_one = [HFLM.generate_until(single_lm, [request])[0] for request in requests]
    assert batched == one_by_one
    assert calls == [4, 3]  # one generate per batch, every request in one
    assert any(0 < len(text.split()) < 8 for text in batched)  # some stop string or budget cut a text short
