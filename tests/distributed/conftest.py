import json
import os

import pytest
import yaml

from colasearch.testing import make_tiny_model, make_tiny_tokenizer

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray per test module, on loopback only. Not "package": this folder is no Python package, so
    pytest would keep that Ray up for the whole session, and later tests that check no Ray is left saw it."""
    from colasearch.distributed import init_ray, shutdown_ray

    init_ray(num_cpus=2)
    yield
    shutdown_ray()


@pytest.fixture
def grid(tmp_path):
    models = []
    for family in ("llama", "qwen2"):
        folder = tmp_path / f"tiny-{family}"
        make_tiny_model(family).save_pretrained(folder)
        make_tiny_tokenizer().save_pretrained(folder)
        models.append(str(folder))
    task = tmp_path / "words.jsonl"
    with task.open("w") as out:
        for item in range(24):
            context = " ".join(f"w{5 + (item * 7 + k) % 80}" for k in range(5))
            out.write(json.dumps({"id": f"q{item}", "context": context,
                                  "choices": [f"w{10 + item % 50}", f"w{60 + item % 30}"], "label": item % 2}) + "\n")
    sweep = {"models": models, "tasks": [f"jsonl:{task}"], "searchers": ["random", "unified"], "targets": [1.2],
             "budget": 3, "search_size": 8, "heldout_size": 8, "baselines": "", "measure": False}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path
