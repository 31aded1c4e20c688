"""``colasearch generate --speculative``: bad flags fail before the model loads, one line, exit 2."""

import pytest

from colasearch import Schedule
from colasearch.cli.app import main


def _exit_code_and_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err.strip()


def test_speculative_needs_a_schedule(capsys):
    code, err = _exit_code_and_error(["generate", "--speculative", "--model", "/nonexistent", "hi"], capsys)
    assert code == 2 and err.count("\n") == 0 and "needs --schedule" in err


@pytest.mark.parametrize("value", ["0", "lots"])
def test_bad_draft_tokens_fail_before_loading(tmp_path, capsys, value):
    path = Schedule.from_layers([0, 1]).save(tmp_path / "draft.yaml")
    argv = ["generate", "--speculative", "-s", str(path), "--draft-tokens", value, "--model", "/nonexistent", "hi"]
    code, err = _exit_code_and_error(argv, capsys)
    assert code == 2 and err.count("\n") == 0 and "draft tokens" in err


@pytest.mark.integration
def test_speculative_text_equals_plain_text(tmp_path, capsys):
    draft = Schedule.from_layers(range(20)).save(tmp_path / "draft.yaml")
    argv = ["generate", "--max-new-tokens", "6", "The capital of France is"]
    with pytest.raises(SystemExit) as plain_exit:
        main(argv)
    plain = capsys.readouterr().out
    with pytest.raises(SystemExit) as speculative_exit:
        main([*argv[:1], "--speculative", "-s", str(draft), "--draft-tokens", "adaptive", *argv[1:]])
    captured = capsys.readouterr()
    assert plain_exit.value.code == speculative_exit.value.code == 0
    assert captured.out == plain and "Paris" in plain
    assert "acceptance rate" in captured.err
