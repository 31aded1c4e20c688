"""``run`` on the command line: the measured objective times its candidates, timing waits for Ray to stop,
and no Ray process of the run outlives it."""

import json

import psutil
import pytest

from colasearch.cli.app import main
from colasearch.distributed.cluster import ray_running

RAY_PROCESSES = ("raylet", "gcs_server", "ray::")


@pytest.fixture(autouse=True)
def short_protocol(monkeypatch):
    """The protocol's shape (ABBA pairs, bound, flags) with fewer, shorter runs: the suite runs on 2 cores."""
    from colasearch import speed

    monkeypatch.setattr(speed, "DEFAULT_PROTOCOL", speed.SpeedProtocol(pairs=4, tokens=4, resamples=200))


def ray_children():
    names = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any(marker in child.name() or marker in " ".join(child.cmdline()) for marker in RAY_PROCESSES):
                names.append(child.name())
        except psutil.Error:
            continue
    return names


def test_run_with_the_measured_objective_times_every_candidate(assets, tmp_path, capsys):
    out = tmp_path / "m.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", str(assets / "tiny"), "--task", f"jsonl:{assets / 'T.jsonl'}", "--objective",
              "measured", "--target-speedup", "1.1", "--budget", "3", "--searcher", "random", "--search-size", "8",
              "--heldout-size", "8", "--confirm-size", "0", "--workers", "0", "--no-measure", "--baselines", "",
              "--out", str(out)])
    # On a tiny model the head dominates, so no candidate may reach 1.1x when *measured*: then the run says so.
    err = capsys.readouterr().err
    assert exit_info.value.code in (0, None) or "found no schedule reaching 1.1x" in err, err
    results = [json.loads(line)["result"] for line in out.with_suffix(".results.jsonl").read_text().splitlines()]
    searched = [result for result in results if result["split"] == "search" and result["ideal_speedup"] > 1.0]
    assert searched
    # Before, the evaluator was built without a timer: every candidate had None and the ideal ratio stood in.
    assert all(result["measured_speedup"] is not None for result in searched), searched


def test_measured_objective_refuses_workers_that_share_a_cpu(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--objective", "measured", "--workers", "2", "--model", "/no/such/model"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "each other's work" in err and len(err.strip().splitlines()) == 1


def test_run_stops_its_ray_before_timing_and_leaves_no_ray_process(assets, tmp_path, capsys, monkeypatch):
    import colasearch.engine.session as session

    timed_while_ray_ran = []
    measure_speed = session.measure_speed

    def spying_measure(model, schedule, protocol=None):
        timed_while_ray_ran.append(ray_running())
        return measure_speed(model, schedule, protocol)

    monkeypatch.setattr(session, "measure_speed", spying_measure)
    assert not ray_running()
    out = tmp_path / "r.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", str(assets / "tiny"), "--task", f"jsonl:{assets / 'T.jsonl'}", "--budget", "2",
              "--searcher", "random", "--search-size", "8", "--heldout-size", "8", "--confirm-size", "0",
              "--workers", "1", "--baselines", "", "--target-speedup", "1.1", "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code in (0, None), err
    # Each timed schedule's figure (or why it is not shipped) is said in full beside the table.
    assert "measured speedup of random (found)" in " ".join(err.split())
    assert timed_while_ray_ran and not any(timed_while_ray_ran)
    assert not ray_running() and ray_children() == []
    speedup = json.loads(json.dumps(__import__("yaml").safe_load(out.read_text())))["metrics"]["speedup"]
    # The file carries the protocol's evidence next to the figure, and never a figure above the bound.
    assert speedup["pairs"] == 4 and len(speedup["interval"]) == 2 and speedup["bound"] > 1
    assert speedup["measured"] is None and speedup["flag"] or speedup["measured"] <= speedup["bound"]


def test_a_failed_search_leaves_no_ray_process(assets, tmp_path, capsys, monkeypatch):
    import colasearch.engine.session as session

    def failing_search(*args, **kwargs):
        assert ray_running()  # the executor is open, Ray is up
        raise session.SearcherError("the searcher broke")

    monkeypatch.setattr(session, "search_with", failing_search)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", str(assets / "tiny"), "--task", f"jsonl:{assets / 'T.jsonl'}", "--budget", "2",
              "--searcher", "random", "--search-size", "8", "--heldout-size", "8", "--workers", "1",
              "--no-measure", "--baselines", "", "--out", str(tmp_path / "f.yaml")])
    assert exit_info.value.code == 2 and "the searcher broke" in capsys.readouterr().err
    assert not ray_running() and ray_children() == []
