"""``--confirm-size``: the confirmation split's items, after the held-out ones, as the run used them."""

import json

import pytest
import yaml

from colasearch.cli.app import main
from colasearch.engine.racing import RacingPolicy

ITEMS, SEARCH, HELDOUT = 80, 16, 16


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A task with items to spare after the search and held-out splits: 80 questions, 48 left to confirm on."""
    path = tmp_path_factory.mktemp("task") / "T80.jsonl"
    with path.open("w") as out:
        for item in range(ITEMS):
            context = " ".join(f"w{5 + (item * 7 + k) % 80}" for k in range(5))
            out.write(json.dumps({"id": f"q{item}", "context": context,
                                  "choices": [f"w{10 + item % 50}", f"w{60 + item % 30}"], "label": item % 2}) + "\n")
    return path


@pytest.mark.parametrize("flag, items", [([], ITEMS - SEARCH - HELDOUT), (["--confirm-size", "16"], 16),
                                         (["--confirm-size", "0"], 0)])
def test_the_run_confirms_on_as_many_unused_items_as_it_had_and_records_them(capsys, tmp_path, assets, task,
                                                                             monkeypatch, flag, items):
    # The reserve needs a budget of 8 x 16 items (a quarter pays for the start and one contender on 16).
    # A tiny random model leaves whether a candidate clears the bound to chance, so every fully scored
    # candidate is made a contender: what is checked is the confirmation the run then does and reports.
    monkeypatch.setattr(RacingPolicy, "choice_bound", lambda self, differences: -1e9)
    out = tmp_path / "s.yaml"
    argv = ["run", "--model", str(assets / "tiny"), "--task", f"jsonl:{task}", "--searcher", "evolution",
            "--budget", "8", "--search-size", str(SEARCH), "--heldout-size", str(HELDOUT), "--workers", "0",
            "--no-measure", "--baselines", "", "--quiet", "--json", "--out", str(out), *flag]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    provenance = yaml.safe_load(out.read_text())["provenance"]
    # By default as many as 4 x the search split of the 48 left; --confirm-size caps it; 0 turns it off.
    assert provenance["confirm_size"] == items
    confirmation = json.loads(captured.out)["confirmation"]
    if not items:
        assert confirmation == [] and provenance.get("confirmation") is None
        return
    # Up to three contenders, each scored with the start on the same first confirmation items: at least the
    # smallest level (16), at most the split, and judged by the test the report names.
    assert 1 <= len(confirmation) <= 3 and provenance["confirmation"] == confirmation
    assert len({check["items"] for check in confirmation}) == 1
    assert 16 <= confirmation[0]["items"] <= items
    for check in confirmation:
        assert check["needed_standard_errors"] > 1.6   # one-sided 5% or stricter, never "a lead above zero"
        assert not check["holds"] or check["lead"] > check["needed_standard_errors"] * check["standard_error"]
