"""A full disk at the end of a command: one line, exit 2, the previous file intact, and what is kept named."""

import errno
import os
from pathlib import Path

import pytest

from colasearch import Schedule
from colasearch.cli.app import main


def fill_disk_for(monkeypatch, name: str) -> None:
    """The file called ``name`` cannot take its place: rename(2) finds the disk full (ENOSPC), as a folder
    that needs one more block for the new name does."""
    rename = os.replace

    def full(source, target, *args, **kwargs):
        if Path(source).name.startswith(f".{name}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_run_on_a_full_disk_keeps_the_previous_schedule_and_names_the_journal(assets, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.yaml"
    out.write_text("previous\n")
    fill_disk_for(monkeypatch, out.name)
    code, err = run_main(["run", "--model", str(assets / "tiny"), "--task", f"jsonl:{assets / 'T.jsonl'}",
                          "--target-speedup", "1.1", "--budget", "2", "--searcher", "random", "--search-size", "8",
                          "--heldout-size", "8", "--confirm-size", "0", "--workers", "0", "--no-measure",
                          "--baselines", "", "--overwrite", "--quiet", "--out", str(out)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("colasearch: error: "), err
    assert sum(line.startswith("colasearch: error") or "Traceback" in line for line in lines) == 1, err
    journal = out.with_suffix(".journal")
    assert f"cannot write {out}: No space left on device; the previous out.yaml is left as it was" in lines[-1]
    assert f"the study {journal} is kept: rerun with --resume to finish" in lines[-1]
    assert out.read_text() == "previous\n" and journal.is_file()
    assert not [item.name for item in tmp_path.iterdir() if item.name.endswith(".tmp")]


@pytest.mark.parametrize("export_format", ["json", "mergekit"])
def test_export_on_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, capsys, monkeypatch, export_format):
    Schedule.from_layers([0, 1, 3], name="org/tiny").save(tmp_path / "s.yaml")
    out = tmp_path / "exported"
    out.write_text("previous\n")
    fill_disk_for(monkeypatch, out.name)
    code, err = run_main(["export", str(tmp_path / "s.yaml"), "--format", export_format, "--out", str(out)], capsys)
    assert code == 2
    assert err == f"colasearch: error: cannot write {out}: No space left on device; the previous exported is left as it was\n"
    assert out.read_text() == "previous\n"
