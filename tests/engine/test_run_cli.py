"""``colasearch run`` and ``colasearch compare``: clear errors (exit 2) and, on the embedded model, a written schedule."""

import re

import pytest
import yaml

from colasearch.cli import main


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize("argv, message", [
    (["run", "--searcher", "nope"], "unknown searcher 'nope'"),
    (["run", "--budget", "0"], "--budget must be at least 1"),
    (["run", "--target-speedup", "0.5"], "--target-speedup must be a number >= 1"),
    (["run", "--baselines", "unified,bogus"], "unknown searcher 'bogus'"),
    (["run", "--option", "no-equals-sign"], "is not KEY=VALUE"),
    (["run", "--objective", "vibes"], "unknown objective 'vibes'"),
    (["compare", "--searchers", "mcts,zzz"], "unknown searcher 'zzz'"),
])
def test_bad_flags_are_one_line_and_exit_2(capsys, tmp_path, argv, message):
    code, out, err = _run(capsys, *argv, "--out" if argv[0] == "run" else "--out-dir", str(tmp_path / "x"))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.integration
def test_an_unknown_search_metric_is_one_line_and_exit_2(capsys, tmp_path, smollm):
    code, _, err = _run(capsys, "run", "--search-metric", "vibes", "--search-size", "4", "--heldout-size", "4",
                        "--out", str(tmp_path / "s.yaml"))
    assert code == 2 and "--search-metric 'vibes' is not reported" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.integration
def test_impossible_target_is_refused_before_any_evaluation(capsys, tmp_path, smollm):
    code, _, err = _run(capsys, "run", "--target-speedup", "40", "--search-size", "4", "--heldout-size", "4",
                        "--out", str(tmp_path / "s.yaml"))
    assert code == 2 and "target speedup 40 is impossible" in err
    assert not (tmp_path / "s.yaml").exists() and not (tmp_path / "s.journal").exists()


@pytest.mark.integration
def test_run_writes_a_schedule_with_metrics_and_resumes_without_recomputing(capsys, tmp_path, smollm):
    out = tmp_path / "s.yaml"
    argv = ["run", "--searcher", "random", "--budget", "2", "--baselines", "unified", "--search-size", "8",
            "--heldout-size", "8", "--no-measure", "--search-metric", "smooth", "--out", str(out)]
    code, stdout, _ = _run(capsys, *argv)
    assert code == 0, stdout
    data = yaml.safe_load(out.read_text())
    assert data["metrics"]["quality"]["metric"] and 0 <= data["metrics"]["quality"]["heldout"] <= 1
    assert data["metrics"]["speedup"]["ideal"] >= 1.25
    assert data["provenance"]["searcher"] == "random" and data["provenance"]["budget"] == 2
    # The search maximized the smooth metric; the file still reports the task's primary one.
    assert data["provenance"]["search_metric"] == "prob" and data["metrics"]["quality"]["metric"] == "acc"
    assert data["model"]["fingerprint"]["num_layers"] == 30
    assert "unified (baseline)" in stdout and "full model" in stdout
    assert re.search(r"of search; \d+s in all", " ".join(stdout.split()))  # the whole command's time

    code, _, err = _run(capsys, *argv)
    assert code == 2 and "--resume" in err
    code, stdout, _ = _run(capsys, *argv, "--resume")
    assert code == 0 and "0 computed, 2 read back)" in " ".join(stdout.split())
    assert yaml.safe_load(out.read_text())["layers"] == data["layers"]


def test_pareto_front_keeps_only_undominated_points():
    from colasearch.study_plot import pareto_front

    points = [(1.0, 0.9), (1.2, 0.8), (1.2, 0.7), (1.3, 0.85), (1.5, 0.5), (1.4, 0.4)]
    assert pareto_front(points) == [(1.0, 0.9), (1.3, 0.85), (1.5, 0.5)]


@pytest.mark.integration
def test_compare_writes_a_table_a_csv_and_a_pareto_png(capsys, tmp_path, smollm):
    import csv

    code, stdout, _ = _run(capsys, "compare", "--searchers", "unified,random", "--budget", "2", "--search-size", "8",
                           "--heldout-size", "8", "--out-dir", str(tmp_path))
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    assert [row["searcher"] for row in rows] == ["unified", "random", "full model"]
    assert int(rows[0]["evaluations"]) == 1 and int(rows[1]["evaluations"]) == 2
    assert all(float(row["ideal_speedup"]) >= 1.25 for row in rows[:2])
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
