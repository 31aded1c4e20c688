"""Bad flags, bad output paths and faults on the command line: exit 2, one short line on stderr, no
traceback, and nothing new or changed where the input was bad. Runs use a tiny model and a tiny task."""

import fcntl
import hashlib
import os
import re
from pathlib import Path

import pytest
import yaml

from colasearch.cli.app import main

FAST = ["--search-size", "8", "--heldout-size", "8", "--workers", "0", "--no-measure", "--baselines", "",
        "--searcher", "random"]


def cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def snapshot(folder):
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            for path in sorted(folder.rglob("*"))}


def refused(capsys, folder, *argv, match=None):
    """Run the command; it must fail cleanly and leave ``folder`` exactly as it was."""
    before = snapshot(folder)
    code, _, err = cli(capsys, *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and len(err.strip()) < 300 and "Traceback" not in err, err
    if match:
        assert re.search(match, err), err
    assert snapshot(folder) == before
    return err


def run_argv(assets, out, *extra):
    return ["run", "--model", assets / "tiny", "--task", f"jsonl:{assets / 'T.jsonl'}", *FAST, "--out", out, *extra]


# -- run: everything refusable is refused before the model loads ----------------------------------

@pytest.mark.parametrize("extra, match", [
    (["-o", "max_tries=abc"], r"max_tries='abc' must be of type int"),
    (["-o", "nope=1"], r"has no option 'nope'"),
    (["--parallel", "0"], r"--parallel must be at least 1"),
    (["--confirm-size", "-1"], r"--confirm-size must be at least 0"),
    (["--threads", "0"], r"--threads must be at least 1, got 0"),
    (["--resume", "--overwrite"], r"exclude each other"),
])
def test_run_flags_are_checked_first(capsys, tmp_path, assets, extra, match):
    refused(capsys, tmp_path, *run_argv(assets, tmp_path / "s.yaml", *extra), match=match)


def test_mcts_exploration_must_be_a_number(capsys, tmp_path, assets):
    argv = run_argv(assets, tmp_path / "s.yaml", "-o", "exploration=abc")
    argv[argv.index("random")] = "mcts"
    refused(capsys, tmp_path, *argv, match=r"exploration='abc' must be of type float")


def test_run_output_paths_are_checked_first(capsys, tmp_path, assets):
    (tmp_path / "folder").mkdir()
    refused(capsys, tmp_path, *run_argv(assets, tmp_path / "folder"), match="is a folder")
    (tmp_path / "file").write_text("x")
    refused(capsys, tmp_path, *run_argv(assets, tmp_path / "file" / "s.yaml"), match="is a file, not a folder")
    refused(capsys, tmp_path, *run_argv(assets, tmp_path / "s.yaml", "--storage", tmp_path / "folder"),
            match="--storage .* is a folder")


def _under_a_file(tmp_path):
    (tmp_path / "plain-file").write_text("x")
    return tmp_path / "plain-file", "is a file, not a folder"


def _in_sysfs(tmp_path):
    # sysfs refuses new files to everyone, root included, so the write probe itself is what refuses.
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("needs Linux sysfs")
    return Path("/sys/kernel"), "cannot write in /sys/kernel"


@pytest.mark.parametrize("unwritable", [_under_a_file, _in_sysfs])
def test_an_unwritable_out_folder_is_refused_first(capsys, tmp_path, assets, unwritable):
    # Not a read-only folder: CI runs as root, which writes into those.
    folder, match = unwritable(tmp_path)
    refused(capsys, tmp_path, *run_argv(assets, folder / "colasearch-test" / "s.yaml"), match=match)
    refused(capsys, tmp_path, "compare", "--searchers", "random", "--out-dir", folder / "colasearch-test",
            match=match)
    assert not (folder / "colasearch-test").exists()


def test_run_resume_overwrite_torn_journal_and_a_second_run(capsys, tmp_path, assets):
    out = tmp_path / "j" / "s.yaml"
    code, stdout, err = cli(capsys, *run_argv(assets, out, "--budget", "5"))
    assert code == 0, err
    journal = out.with_suffix(".journal")
    finished = journal.read_bytes()

    # An existing --out is neither overwritten silently nor resumed with other flags.
    refused(capsys, tmp_path, *run_argv(assets, out, "--budget", "5"), match=r"--out .* exists; pass --resume")
    refused(capsys, tmp_path, *run_argv(assets, out, "--budget", "5", "--resume", "--seed", "3"),
            match=r"--resume: .* other flags: seed \(stored '0', now '3'\)")

    # A second run on the same journal at once is refused, not duplicated.
    with journal.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the finished run let go of it
        refused(capsys, tmp_path, *run_argv(assets, out, "--budget", "5", "--resume"), match="in use by another")

    # A crash mid-write tore the last line: the resume keeps what came before and finishes the budget.
    journal.write_bytes(finished[:-300])
    kept = finished[:finished[:-300].rfind(b"\n") + 1].count(b'"op_code":4')  # whole records before the tear
    assert 0 < kept < 5
    for attempt in range(3):
        code, stdout, err = cli(capsys, *run_argv(assets, out, "--budget", "8", "--resume"))
        assert code == 0, err
        assert "Traceback" not in err
        if attempt == 0:
            assert f"{8 - kept} computed, {kept} read back)" in " ".join(stdout.split())
            assert "torn by a crash" in err
    assert len(list(tmp_path.glob("j/s.journal.torn-*"))) == 1
    assert journal.read_bytes().count(b'"op_code":4') == 8
    assert journal.read_bytes().startswith(finished[:finished[:-300].rfind(b"\n") + 1])
    assert "0 computed, 8 read back)" in " ".join(stdout.split())

    code, _, err = cli(capsys, *run_argv(assets, out, "--budget", "2", "--overwrite"))
    assert code == 0, err
    assert yaml.safe_load(out.read_text())["provenance"]["evaluations"] == 2


# -- other commands -------------------------------------------------------------------------------

def test_compare_checks_its_out_dir_first(capsys, tmp_path, assets):
    (tmp_path / "file").write_text("x")
    argv = ["compare", "--model", assets / "tiny", "--task", f"jsonl:{assets / 'T.jsonl'}", "--searchers", "random",
            "--budget", "2", "--search-size", "8", "--heldout-size", "8"]
    refused(capsys, tmp_path, *argv, "--out-dir", tmp_path / "file", match="is a file; give a folder")
    refused(capsys, tmp_path, *argv, "--out-dir", tmp_path / "file" / "sub", match="is a file, not a folder")


@pytest.mark.parametrize("argv, match", [
    (["generate", "", "--model", "{tiny}"], "prompt is empty"),
    (["generate", "hi", "--max-new-tokens", "-3", "--model", "{tiny}"], "--max-new-tokens must be at least 1"),
    (["bench", "--schedule", "{s}", "--batch-sizes", "0", "--model", "{tiny}"], "--batch-sizes must all be at least 1"),
    (["bench", "--schedule", "{s}", "--pairs", "3", "--model", "{tiny}"], "--pairs must be even"),
    (["eval", "--threads", "-1", "--model", "{tiny}", "--task", "jsonl:{T}"], "--threads must be at least 1"),
    (["compare", "--threads", "0", "--model", "{tiny}", "--task", "jsonl:{T}"], "--threads must be at least 1"),
    (["eval", "--cache", "{dir}", "--model", "{tiny}", "--task", "jsonl:{T}"], "--cache .* is a folder"),
    (["show", "{s}", "--png", "{dir}"], "--png .* is a folder"),
    (["export", "{s}", "--format", "json", "--out", "{dir}"], "--out .* is a folder"),
    (["export", "{s}", "--out", "{file}", "--model", "{tiny}"], "--out .* is a file; give a folder"),
    (["export", "{s}", "--out", "{full}", "--model", "{tiny}"], "already exists and is not empty"),
])
def test_bad_flags_of_other_commands(capsys, tmp_path, assets, argv, match):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    names = {"tiny": assets / "tiny", "s": assets / "s.yaml", "T": assets / "T.jsonl", "dir": tmp_path / "dir",
             "file": tmp_path / "file", "full": tmp_path / "full"}
    refused(capsys, tmp_path, *[part.format(**names) for part in argv], match=match)


def test_a_corrupt_gguf_is_one_line(capsys, tmp_path, assets, monkeypatch):
    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "corrupt.gguf").write_bytes(b"GGUF" + os.urandom(200))
    # Each command says what is wrong with the file, from its header or from the conversion.
    what = r"corrupt\.gguf(: not a valid GGUF file|: unsupported GGUF version|: truncated GGUF header| as a GGUF model)"
    refused(capsys, work, "validate", assets / "s.yaml", "--model", work / "corrupt.gguf", match=what)
    refused(capsys, work, "generate", "hi", "--model", work / "corrupt.gguf", match=what)


def test_sweep_checks_every_cell_before_ray_starts(capsys, tmp_path, assets):
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"models": [str(assets / "tiny")], "tasks": [f"jsonl:{assets / 'T.jsonl'}"],
                                      "searchers": ["random", "nope"], "targets": [1.2]}))
    refused(capsys, tmp_path, "sweep", config, "--out-dir", tmp_path / "out", match="unknown searcher 'nope'")
    config.write_text(yaml.safe_dump({"models": [str(assets / "tiny")], "tasks": [f"jsonl:{tmp_path / 'absent.jsonl'}"],
                                      "searchers": ["random"], "targets": [1.2]}))
    refused(capsys, tmp_path, "sweep", config, "--out-dir", tmp_path / "out", match="task file not found")


def test_exported_and_drawn_files_are_readable_by_others(capsys, tmp_path, assets):
    previous = os.umask(0o022)
    try:
        code, _, err = cli(capsys, "export", assets / "s.yaml", "--model", assets / "tiny", "--out", tmp_path / "ckpt")
        assert code == 0, err
        code, _, err = cli(capsys, "show", assets / "s.yaml", "--png", tmp_path / "s.png")
        assert code == 0, err
    finally:
        os.umask(previous)
    files = [path for path in (tmp_path / "ckpt").rglob("*") if path.is_file()] + [tmp_path / "s.png"]
    assert any(path.name == "model.safetensors" for path in files)
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in files} == {path.name: "0o644" for path in files}
