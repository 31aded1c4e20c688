"""One EvaluatorConfig for every evaluator of a run: built in this process, and received as is by a Ray
worker (its spec is built in the worker without Ray here), so their evaluators cannot differ by an option."""

import pickle

import pytest
from pydantic import ValidationError

from colasearch.distributed.ray_executor import EvaluatorSpec
from colasearch.evaluator import Evaluator
from colasearch.evaluator.config import EvaluatorConfig
from colasearch.tasks import load_task
from colasearch.testing import make_tiny_model, make_tiny_tokenizer

CONFIG = EvaluatorConfig(search_size=8, heldout_size=6, seed=3, confirm_size=4, speculative_prompts=2,
                         draft_tokens=3, dense_kl=True, expert_skip_items=5)


def settings(evaluator) -> dict:
    return {"config": evaluator.config, "speculative": evaluator.speculative, "reference": evaluator.with_reference,
            "items": {split: [item.id for item in evaluator.splits[split]] for split in ("search", "heldout")}}


def test_a_worker_builds_the_evaluator_this_process_builds(tmp_path):
    folder = tmp_path / "tiny"
    model, tokenizer = make_tiny_model("llama", num_layers=4), make_tiny_tokenizer()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    spec = pickle.loads(pickle.dumps(EvaluatorSpec(str(folder), "builtin:capitals", CONFIG)))  # as Ray ships it
    assert spec.evaluator == CONFIG
    here = Evaluator(model, tokenizer, load_task("builtin:capitals"), CONFIG)
    assert settings(spec()) == settings(here)
    assert here.config is CONFIG and len(here.splits.confirm) == 4
    assert here.task_key.endswith(":8/6/3|speculative=2/3/16|kl")
    assert settings(here)["speculative"][:2] == (2, 3) and settings(here)["reference"]


def test_a_misspelt_option_fails_when_the_config_is_built():
    with pytest.raises(ValidationError):
        EvaluatorConfig(draft_token=3)  # before: a TypeError in each worker, after the model loaded
    assert CONFIG.options() == {"confirm_size": 4, "speculative_prompts": 2, "draft_tokens": 3, "dense_kl": True,
                                "expert_skip_items": 5}
