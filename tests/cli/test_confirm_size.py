"""``--confirm-size``: the confirmation split's items, after the held-out ones, as the run used them."""

import json

import pytest
import yaml

from colasearch.cli.app import main
from colasearch.testing import make_tiny_model, make_tiny_tokenizer


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("confirm")
    make_tiny_model("llama", num_layers=8).save_pretrained(root / "tiny")
    make_tiny_tokenizer().save_pretrained(root / "tiny")
    with (root / "T.jsonl").open("w") as out:
        for item in range(22):
            context = " ".join(f"w{5 + (item * 7 + k) % 80}" for k in range(5))
            out.write(json.dumps({"id": f"q{item}", "context": context,
                                  "choices": [f"w{10 + item % 50}", f"w{60 + item % 30}"], "label": item % 2}) + "\n")
    return root


@pytest.mark.parametrize("flag, items", [([], 6), (["--confirm-size", "4"], 4), (["--confirm-size", "0"], 0)])
def test_the_schedule_records_how_many_confirmation_items_the_run_had(capsys, tmp_path, assets, flag, items):
    out = tmp_path / "s.yaml"
    argv = ["run", "--model", str(assets / "tiny"), "--task", f"jsonl:{assets / 'T.jsonl'}", "--searcher", "evolution",
            "--budget", "3", "--search-size", "8", "--heldout-size", "8", "--workers", "0", "--no-measure",
            "--baselines", "", "--quiet", "--json", "--out", str(out), *flag]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    # 22 items: 8 searched, 8 held out, and by default as many as the search split of the 6 left.
    assert yaml.safe_load(out.read_text())["provenance"]["confirm_size"] == items
    assert isinstance(json.loads(captured.out)["confirmation"], list)
