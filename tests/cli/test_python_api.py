"""The run pipeline as a library call: the README's five-line search runs, a RunConfig refuses what the CLI
refuses with the same line, and a RunResult holds what the command prints."""

import re
from pathlib import Path

import pytest

import colasearch
from colasearch import ColasearchError, RunConfig, find_schedule

README = Path(__file__).resolve().parents[2] / "README.md"
# Split sizes a 24-item task holds, and nothing slow: the README's own settings are the defaults otherwise.
TINY = {"search_size": 8, "heldout_size": 8, "confirm_size": 0, "workers": 0, "measure": False}


def readme_search() -> str:
    """The README's Python search: the code block that calls ``find_schedule``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [block for block in blocks if "find_schedule(" in block]
    return block


class TinyRunConfig(RunConfig):
    search_size: int = TINY["search_size"]
    heldout_size: int = TINY["heldout_size"]
    confirm_size: int | None = TINY["confirm_size"]
    workers: int | None = TINY["workers"]
    measure: bool = TINY["measure"]


def test_the_readme_search_runs_as_written(assets, tmp_path, monkeypatch, capsys):
    code = readme_search()
    assert len(code.strip().splitlines()) <= 6  # a search in five lines (and a blank one)
    # The README's model and task are the embedded ones; here the tiny model and task stand in for them,
    # and the splits shrink to fit a 24-item task. Everything else runs as printed.
    assert '"smollm2-135m"' in code and '"builtin:capitals"' in code and "budget=40" in code
    code = code.replace('"smollm2-135m"', repr(str(assets / "tiny")))
    code = code.replace('"builtin:capitals"', repr(f"jsonl:{assets / 'T.jsonl'}")).replace("budget=40", "budget=3")
    monkeypatch.setattr(colasearch, "RunConfig", TinyRunConfig)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    result = namespace["result"]
    written = colasearch.Schedule.load(tmp_path / namespace["config"].out)
    assert written.layers == result.schedule.layers and written.metrics.quality.heldout == result.rows[-1]["heldout"]
    assert [row["schedule"] for row in result.rows] == ["full model", "unified (baseline)", "evolution (found)"]
    assert capsys.readouterr().out.splitlines()[-1] == f"{result.schedule.chain} {result.rows[-1]['heldout']}"


@pytest.mark.parametrize("settings, message", [
    ({"budget": 0}, "--budget must be at least 1"),
    ({"searcher": "nope"}, "unknown searcher 'nope'"),
    ({"baselines": "unified,bogus"}, "unknown searcher 'bogus'"),
    ({"searcher_options": {"max_swaps": "abc"}}, "max_swaps='abc' must be of type int"),
    ({"resume": True, "overwrite": True}, "exclude each other"),
    ({"threads": 0}, "--threads must be at least 1, got 0"),
    ({"objective": "speculative", "draft_tokens": 40}, "--draft-tokens in 1..32"),
])
def test_a_run_config_refuses_what_the_command_refuses_with_its_line(settings, message):
    with pytest.raises(ColasearchError, match=re.escape(message)):
        RunConfig(**settings)


def test_a_run_config_is_one_frozen_value_with_the_commands_defaults():
    from pydantic import ValidationError

    config = RunConfig(model="m", baselines="unified, random", searcher_options={"max_swaps": 2})
    assert config.baselines == ("unified", "random") and config.tasks == ("builtin:capitals",)
    assert config.schedule_path == Path("runs/m_builtin-capitals_evolution_x1.25.yaml")
    assert config.study_storage == "runs/m_builtin-capitals_evolution_x1.25.journal"
    with pytest.raises(ValidationError):
        RunConfig(modle="m")  # a misspelt setting is an error, not silently ignored
    with pytest.raises(ValidationError):
        config.budget = 3


def test_a_search_from_python_leaves_the_callers_ray_running(assets, tmp_path):
    from colasearch.distributed import init_ray, shutdown_ray
    from colasearch.distributed.cluster import ray_running

    init_ray(num_cpus=1)
    try:
        result = find_schedule(TinyRunConfig(model=str(assets / "tiny"), tasks=[f"jsonl:{assets / 'T.jsonl'}"],
                                             searcher="random", budget=2, baselines="", workers=1,
                                             target_speedup=1.1, out=tmp_path / "r.yaml"), progress=False)
        assert ray_running()  # the caller's: theirs to stop
        assert result.outcome.evaluations == 2 and (tmp_path / "r.yaml").is_file()
    finally:
        shutdown_ray()


def run_cli(capsys, argv):
    from colasearch.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def tiny_run(assets, out, *extra):
    return ["run", "--model", assets / "tiny", "--task", f"jsonl:{assets / 'T.jsonl'}", "--search-size", "8",
            "--heldout-size", "8", "--confirm-size", "0", "--workers", "0", "--no-measure", "--searcher", "random",
            "--budget", "2", "--target-speedup", "1.1", "--out", out, *extra]


def test_run_off_a_terminal_prints_a_line_per_phase(assets, tmp_path, capsys):
    code, out, err = run_cli(capsys, tiny_run(assets, tmp_path / "s.yaml"))
    assert code in (0, None), err
    lines = err.strip().splitlines()
    assert re.fullmatch(r"\[\d+s\] loaded .*tiny and T: \d+s", lines[0]), err
    assert any(re.fullmatch(r"\[\d+s\] full model: held-out scoring \(8 items\)", line) for line in lines), err
    assert any(line.endswith("] baseline unified: search") for line in lines), err
    wrote = next(index for index, line in enumerate(lines) if line.startswith("wrote "))
    assert not [line for line in lines[wrote:] if line.startswith("[")]  # every phase came before the end
    assert "evals" not in out  # the live bar is for a terminal: no last frame of it among the results


def test_a_refusal_after_the_model_loaded_is_still_one_line_off_a_terminal(assets, tmp_path, capsys):
    code, _, err = run_cli(capsys, tiny_run(assets, tmp_path / "s.yaml", "--target-speedup", "40"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "impossible" in err, err
