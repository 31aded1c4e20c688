"""``--confirm-size``: the confirmation split's items, after the held-out ones, as the run used them."""

import json

import pytest
import yaml

from colasearch.cli.app import main


@pytest.mark.parametrize("flag, items", [([], 8), (["--confirm-size", "4"], 4), (["--confirm-size", "0"], 0)])
def test_the_schedule_records_how_many_confirmation_items_the_run_had(capsys, tmp_path, assets, flag, items):
    out = tmp_path / "s.yaml"
    argv = ["run", "--model", str(assets / "tiny"), "--task", f"jsonl:{assets / 'T.jsonl'}", "--searcher", "evolution",
            "--budget", "3", "--search-size", "8", "--heldout-size", "8", "--workers", "0", "--no-measure",
            "--baselines", "", "--quiet", "--json", "--out", str(out), *flag]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    # 24 items: 8 searched, 8 held out, and by default as many as the search split of the 8 left.
    assert yaml.safe_load(out.read_text())["provenance"]["confirm_size"] == items
    assert isinstance(json.loads(captured.out)["confirmation"], list)
