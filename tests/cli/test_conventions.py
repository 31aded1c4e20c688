"""What a Python CLI user expects: python -m, --version, completion, --json/--quiet, a project config file."""

import json
import os
import subprocess
import sys

import pytest

from colasearch import Schedule, __version__
from colasearch.cli.app import app, main

TABLE_COMMANDS = (("run",), ("compare",), ("eval",), ("bench",), ("show",), ("sweep",), ("cache", "list"))


def cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def _offline_env(**extra):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}


def test_python_dash_m_version_and_offline_shell_completion():
    done = subprocess.run([sys.executable, "-m", "colasearch", "--version"], capture_output=True, text=True,
                          env=_offline_env(), timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"colasearch {__version__}"
    done = subprocess.run([sys.executable, "-m", "colasearch"], capture_output=True, text=True, timeout=120,
                          env=_offline_env(_COLASEARCH_COMPLETE="complete_bash", COMP_WORDS="colasearch cache cl",
                                           COMP_CWORD="2"))
    assert done.returncode == 0 and done.stdout.split() == ["clear"]


def test_every_command_that_prints_a_table_has_json_and_quiet():
    import typer

    from colasearch.cli.app import _register_commands

    _register_commands()
    group = typer.main.get_command(app)
    for path in TABLE_COMMANDS:
        command = group
        for name in path:
            command = command.commands[name]
        flags = {flag for parameter in command.params for flag in parameter.opts}
        assert {"--json", "--quiet", "-q"} <= flags, path


def test_show_json_and_quiet_conversion(tmp_path, capsys, monkeypatch):
    from colasearch.testing import write_tiny_gguf

    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "cache"))
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf", num_layers=4)
    schedule = tmp_path / "s.yaml"
    Schedule.from_layers([0, 1, 1, 3]).save(schedule)
    code, out, err = cli(["show", str(schedule), "--model", str(gguf), "--json", "--quiet"], capsys)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["summary"] == {"num_layers": 4, "skipped": [2], "repeated": [1], "sub_blocks": [], "reordered": False}
    assert shown["ideal_speedup"] == pytest.approx(1.0, abs=0.01)
    assert err == ""  # the model was converted, silently
    assert list((tmp_path / "cache" / "models").iterdir())


def test_project_config_sets_defaults_and_flags_win(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "colasearch.yaml").write_text("cache:\n  list: {json: true}\n")
    code, out, _ = cli(["cache", "list"], capsys)
    assert code == 0 and json.loads(out)["entries"] == []
    code, out, _ = cli(["cache", "list", "--no-json"], capsys)
    assert code == 0 and "0 cached models" in out

    (tmp_path / "colasearch.yaml").write_text("run:\n  budgt: 3\n")
    code, _, err = cli(["cache", "list"], capsys)
    assert code == 2 and err.strip() == "colasearch: error: colasearch.yaml: run: run has no option 'budgt'"
    (tmp_path / "colasearch.yaml").write_text("modle: x\n")
    code, _, err = cli(["cache", "list"], capsys)
    assert code == 2 and "no command has an option 'modle'" in err
