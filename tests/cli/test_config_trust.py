"""A ``colasearch.yaml`` found in the working folder sets only harmless defaults; a file named on purpose sets any.

Any folder a user enters (a cloned repository, a shared project) can carry a ``colasearch.yaml``. Options that
reach the network, load code, destroy data or write outside that folder must come from the command line, or
from a file named with ``--config`` or ``COLASEARCH_CONFIG``. Whichever file is applied is named on stderr.
"""

import json
from pathlib import Path

import pytest
import yaml

from colasearch.cli.app import main
from colasearch.model_cache import CacheEntry

# (where in the file, key as written, value): each one a found file may not set.
DANGEROUS = [
    (("run",), "address", "ray://attacker.example:10001"),
    (("sweep",), "address", "auto"),
    ((), "address", "ray://attacker.example:10001"),  # a top-level key reaches every command with the option
    (("run",), "storage", "postgresql://attacker.example/studies"),
    (("eval",), "lm-eval-include", "tasks"),
    (("eval",), "lm_eval_include", "tasks"),
    (("run",), "overwrite", True),
    (("export",), "overwrite", True),
    (("run",), "resume", True),
    (("cache", "clear"), "yes", True),
    (("dashboard",), "allow-edits", True),
    (("run",), "out", "/tmp/elsewhere/schedule.yaml"),
    (("run",), "out", "../schedule.yaml"),
    (("export",), "out", "~/exported"),
    (("show",), "png", "/tmp/elsewhere/picture.png"),
    (("eval",), "cache", "../results.jsonl"),
    (("compare",), "out-dir", "/tmp/elsewhere"),
    (("sweep",), "out-dir", "../sweep"),
]


def nested(where, key, value):
    data = {key: value}
    for section in reversed(where):
        data = {section: data}
    return data


def cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working folder with no config yet, and an empty model cache."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("COLASEARCH_CONFIG", raising=False)
    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "cache"))
    return folder


@pytest.mark.parametrize(("where", "key", "value"), DANGEROUS,
                         ids=[".".join((*where, key)) + f"={value}" for where, key, value in DANGEROUS])
def test_a_found_config_cannot_set_a_dangerous_option(project, capsys, where, key, value):
    (project / "colasearch.yaml").write_text(yaml.safe_dump(nested(where, key, value)))
    code, out, err = cli(["cache", "list", "--json"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("colasearch: error: colasearch.yaml")
    assert ".".join((*where, key)) in err  # names the key as written
    assert "--config" in err and "COLASEARCH_CONFIG" in err  # and how to pass it instead


@pytest.mark.parametrize(("where", "key", "value"), DANGEROUS,
                         ids=[".".join((*where, key)) + f"={value}" for where, key, value in DANGEROUS])
@pytest.mark.parametrize("named_by", ["--config", "COLASEARCH_CONFIG"])
def test_a_config_named_on_purpose_can_set_it_and_is_named(project, tmp_path, capsys, monkeypatch, where, key,
                                                           value, named_by):
    config = tmp_path / "trusted.yaml"
    config.write_text(yaml.safe_dump(nested(where, key, value)))
    (project / "colasearch.yaml").write_text("run: {address: ray://ignored}\n")  # an explicit file wins
    argv = ["cache", "list", "--json"]
    if named_by == "--config":
        argv = ["--config", str(config), *argv]
    else:
        monkeypatch.setenv("COLASEARCH_CONFIG", str(config))
    code, out, err = cli(argv, capsys)
    assert code == 0, err
    assert json.loads(out)["entries"] == []
    assert err.count("\n") == 1 and str(config) in err and ".".join((*where, key)) in err


def test_a_found_config_with_harmless_keys_applies_and_is_named(project, capsys):
    (project / "colasearch.yaml").write_text("model: ./tiny.gguf\nrun: {budget: 5, out: runs/x.yaml}\n"
                                             "cache:\n  list: {json: true}\n")
    code, out, err = cli(["cache", "list"], capsys)
    assert code == 0 and json.loads(out)["entries"] == []  # json came from the file
    assert err.count("\n") == 1
    line = err.strip()
    assert "colasearch.yaml" in line
    for key in ("model", "run.budget", "run.out", "cache.list.json"):
        assert key in line


def test_a_found_output_path_through_a_link_out_of_the_folder_is_refused(project, tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    (project / "runs").symlink_to(tmp_path / "elsewhere")
    (project / "colasearch.yaml").write_text("run: {out: runs/x.yaml}\n")
    code, _, err = cli(["cache", "list"], capsys)
    assert code == 2 and err.count("\n") == 1 and "run.out" in err


def test_the_named_value_reaches_the_command(project, tmp_path, capsys, monkeypatch):
    """`yes` from a named file deletes without asking, as `--yes` would."""
    import colasearch.model_cache as model_cache

    entry = CacheEntry(key="abc123", model="tiny", dtype="float32", size=10, path=tmp_path / "entry")
    removed = []
    monkeypatch.setattr(model_cache, "select_entries", lambda key=None, legacy=False: [entry])
    monkeypatch.setattr(model_cache, "remove_entries", lambda entries, leftovers=False: removed.extend(entries) or 10)
    config = tmp_path / "trusted.yaml"
    config.write_text("cache:\n  clear: {'yes': true}\n")  # quoted: YAML reads a bare yes as a boolean
    code, _, err = cli(["--config", str(config), "cache", "clear"], capsys)
    assert code == 0, err
    assert removed == [entry]


def test_a_missing_named_config_is_one_line(project, capsys, monkeypatch):
    code, _, err = cli(["--config", "nowhere.yaml", "cache", "list"], capsys)
    assert code == 2 and err.count("\n") == 1 and "nowhere.yaml" in err
    monkeypatch.setenv("COLASEARCH_CONFIG", "nowhere.yaml")
    code, _, err = cli(["cache", "list"], capsys)
    assert code == 2 and err.count("\n") == 1 and "COLASEARCH_CONFIG" in err and "nowhere.yaml" in err


def test_a_config_cannot_construct_python_objects(project, capsys):
    """Config files are read with a safe loader: a python tag is malformed YAML, never a call."""
    marker = project / "pwned"
    (project / "colasearch.yaml").write_text(f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    code, _, err = cli(["cache", "list"], capsys)
    assert code == 2 and err.count("\n") == 1 and not marker.exists()
    assert not Path("pwned").exists()
