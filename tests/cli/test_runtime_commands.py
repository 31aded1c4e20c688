"""The CLI's run-a-schedule commands, through a real subprocess (stdout, stderr and exit codes)."""

import os
import subprocess
import sys

import pytest

from colasearch import Schedule


def run_cli(*args, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "colasearch", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_missing_model_is_one_line_and_exit_2(tmp_path):
    result = run_cli("generate", "--model", str(tmp_path / "absent"), "hi")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "model not found" in result.stderr and "Traceback" not in result.stderr


def test_bad_schedule_fails_before_loading_the_model(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("colasearch_schedule: 1\nlayers: [0, 1\n")
    result = run_cli("generate", "--schedule", str(bad), "hi")
    assert result.returncode == 2 and "malformed YAML" in result.stderr
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.integration
def test_generate_prints_only_the_generated_text(tmp_path):
    plain = run_cli("generate", "--max-new-tokens", "6", "The capital of France is")
    assert plain.returncode == 0, plain.stderr
    assert "Paris" in plain.stdout and "capital of France" not in plain.stdout
    foreign = Schedule.from_layers([0, 1, 2])
    path = foreign.save(tmp_path / "s.yaml")
    scheduled = run_cli("generate", "--schedule", str(path), "--max-new-tokens", "4", "Hello")
    assert scheduled.returncode == 0, scheduled.stderr
    out_of_range = Schedule.from_layers([0, 31]).save(tmp_path / "far.yaml")
    result = run_cli("generate", "--schedule", str(out_of_range), "Hello")
    assert result.returncode == 2 and "layer 31 is out of range" in result.stderr



def test_a_prompt_of_no_tokens_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    """The tiny GGUF's byte-level tokenizer has tokens "w0".."w95" and no merges: any text encodes to nothing."""
    from colasearch.cli.app import main
    from colasearch.testing import write_tiny_gguf

    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "cache"))
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf", num_layers=2)
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--model", str(gguf), "--max-new-tokens", "2", "hello"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err  # the first load's conversion notice may come before the one error line
    assert err.strip().splitlines()[-1] == ("colasearch: error: the prompt 'hello' is no tokens for this model's "
                                            "tokenizer; give text it can encode")
