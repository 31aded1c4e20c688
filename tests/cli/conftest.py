"""Shared assets of the command-line tests: a tiny model folder, a tiny task and a schedule for them."""

import json

import pytest

from colasearch.testing import make_tiny_model, make_tiny_tokenizer


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny model folder, a tiny multiple-choice task and a valid schedule for it, outside any test's folder."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("assets")
    model = make_tiny_model("llama", num_layers=8)
    model.save_pretrained(root / "tiny")
    make_tiny_tokenizer().save_pretrained(root / "tiny")
    with (root / "T.jsonl").open("w") as out:
        for item in range(24):
            context = " ".join(f"w{5 + (item * 7 + k) % 80}" for k in range(5))
            out.write(json.dumps({"id": f"q{item}", "context": context,
                                  "choices": [f"w{10 + item % 50}", f"w{60 + item % 30}"], "label": item % 2}) + "\n")
    from colasearch.schedule import Schedule

    Schedule.from_layers([0, 1, 2, 3, 4, 5], model=model, name=str(root / "tiny")).save(root / "s.yaml")
    return root
