"""Progress off a terminal (pytest's capture is one): plain lines once the run is underway, a line every
``every`` seconds while it works, nothing under --quiet, and nothing before the run is past its refusals."""

import time

import pytest

from colasearch.console import set_quiet
from colasearch.executor import Executor
from colasearch.progress import CountingExecutor, RunLog
from colasearch.schedule import Schedule


class Echo(Executor):
    def __init__(self):
        self.queue = []

    def submit(self, schedule, items=None, split=None):
        self.queue.append(schedule)

    def pending(self):
        return len(self.queue)

    def next_finished(self):
        return self.queue.pop(0), None


def wait_for(capsys, text: str, seconds: float = 20.0) -> str:
    """stderr once it holds ``text`` (the heartbeat is a thread); fails if it never does."""
    err = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        err += capsys.readouterr().err
        if text in err:
            return err
        time.sleep(0.1)
    pytest.fail(f"{text!r} never came; stderr: {err!r}")


def test_lines_wait_until_the_search_evaluates_then_a_heartbeat_counts_it(capsys):
    log = RunLog(every=0.0)
    assert not log.terminal and not log.live_bar
    log.note("loaded tiny and T")
    assert capsys.readouterr().err == ""  # a refusal now would still be the only line
    try:
        with log.search(Echo(), budget=4, search_size=8) as executor:
            executor.submit(Schedule.from_layers([0, 1]))
            executor.submit(Schedule.from_layers([0, 2]), items=4)  # racing: half a split
            executor.next_finished()
            err = wait_for(capsys, "search: 1 evaluations done, 1.5 of the budget's 4 full-split evaluations")
            assert err.startswith("[") and "s] loaded tiny and T\n" in err
    finally:
        log.close()


def test_a_phase_is_one_line_when_it_starts_and_the_heartbeat_names_it(capsys):
    log = RunLog(every=0.0)
    try:
        with log.phase("full model: held-out scoring (8 items)"):
            err = wait_for(capsys, "full model: held-out scoring (8 items): running for")
        assert err.splitlines()[0].endswith("] full model: held-out scoring (8 items)")
    finally:
        log.close()


def test_quiet_and_disabled_logs_print_nothing(capsys):
    set_quiet(True)
    try:
        for log in (RunLog(every=0.0), ):
            log.note("loaded")
            with log.search(Echo(), 2, 8) as executor, log.phase("scoring"):
                executor.submit(Schedule.from_layers([0]))
            log.close()
    finally:
        set_quiet(False)
    log = RunLog(enabled=False, every=0.0)
    with log.phase("scoring"):
        log.underway()
    log.close()
    assert capsys.readouterr().err == ""


def test_the_counting_executor_passes_everything_on():
    inner = Echo()
    counted = CountingExecutor(inner, search_size=8)
    counted.submit(Schedule.from_layers([0, 1]), items=16)
    assert inner.pending() == counted.pending() == 1 and counted.spent == 1.0
    assert counted.next_finished()[0].layers == Schedule.from_layers([0, 1]).layers and counted.finished == 1
