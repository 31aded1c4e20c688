"""``run --overwrite`` starts with an empty results file: nothing of the replaced run is read back."""

import json

import pytest

from colasearch.cli.app import main

FAST = ["--search-size", "8", "--heldout-size", "8", "--workers", "0", "--no-measure", "--baselines", "",
        "--searcher", "random", "--budget", "2"]
MARK = 123.0


def run(capsys, assets, out, *extra):
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in ["run", "--model", assets / "tiny", "--task", f"jsonl:{assets / 'T.jsonl'}",
                                   *FAST, "--out", out, *extra]])
    err = capsys.readouterr().err
    assert exit_info.value.code == 0, err


def test_overwrite_reads_back_nothing_of_the_replaced_run(capsys, tmp_path, assets):
    out = tmp_path / "s.yaml"
    run(capsys, assets, out)
    results = out.with_suffix(".results.jsonl")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert records
    # Mark every stored figure, as if another model (or older code) had written them under these keys.
    for record in records:
        record["result"]["quality"] = {name: MARK for name in record["result"]["quality"]}
    results.write_text("".join(json.dumps(record) + "\n" for record in records))

    run(capsys, assets, out, "--overwrite")
    written = [json.loads(line) for line in results.read_text().splitlines()]
    assert written and all(MARK not in record["result"]["quality"].values() for record in written)
    assert str(MARK) not in out.read_text()
