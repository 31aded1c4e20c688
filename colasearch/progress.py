"""Progress of a run for a person watching it, on stderr; nothing under ``--quiet``.

On a terminal: a spinner while a phase runs, then one line with the time it took (the search draws its own
bar). Off a terminal (a pipe, a log file, a CI job, a Ray task) nothing can be redrawn, so the log gets plain
lines instead: one when a phase starts, and one every 30 seconds while the run works.

Off a terminal the lines start only once the search has begun evaluating. Everything a run refuses (flags,
paths, a journal in use, a target no schedule reaches) comes before that, so a refused run still leaves
exactly one line on stderr: its error.
"""

from __future__ import annotations

import contextlib
import threading
import time

from colasearch.console import stderr_console
from colasearch.executor import Executor

#: Seconds between two lines off a terminal.
EVERY = 30.0


class RunLog:
    """One run's progress lines: ``note`` for a fact (the model loaded), ``phase`` around a step, ``search``
    around the search (it hands back the executor to use, counted for the heartbeat). ``label`` goes before
    every line, e.g. a sweep's cell name, where several runs share one log."""

    def __init__(self, enabled: bool = True, label: str = "", every: float = EVERY, started: float | None = None):
        self.console = stderr_console()
        self.enabled = enabled and not self.console.quiet
        self.terminal = self.console.is_terminal
        self.label = f"{label}: " if label else ""
        self.every = every
        self.started = time.perf_counter() if started is None else started  # the lines' clock (perf_counter)
        self._pending: list[str] = []       # lines held back until the run is underway (off a terminal)
        self._underway = False
        self._phase: tuple[str, float] | None = None       # the phase running, since when
        self._search: tuple[CountingExecutor, int] | None = None  # the search running, its budget
        self._last_line = 0.0
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None

    @property
    def live_bar(self) -> bool:
        """Whether the search should draw its live bar: on a terminal only (off one, a bar is only its last
        frame, dumped at the end; these lines stand in for it)."""
        return self.enabled and self.terminal

    # -- lines ------------------------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        self._last_line = time.perf_counter()
        self.console.print(f"{self.label}{text}", markup=False, highlight=False, soft_wrap=True)

    def _stamp(self, text: str) -> str:
        return f"[{time.perf_counter() - self.started:.0f}s] {text}"

    def note(self, text: str) -> None:
        """A line at once on a terminal; off one, held back until the run is underway."""
        if not self.enabled:
            return
        if self.terminal:
            self._print(text)
        elif self._underway:
            self._print(self._stamp(text))
        else:
            self._pending.append(self._stamp(text))

    def underway(self) -> None:
        """The run is past everything it could refuse: held-back lines go out and the heartbeat starts."""
        if self._underway or not self.enabled:
            return
        self._underway = True
        if self.terminal:
            return
        for line in self._pending:
            self._print(line)
        self._pending.clear()
        self._heart = threading.Thread(target=self._beat, name="colasearch-progress", daemon=True)
        self._heart.start()

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            status = self._status()
            if status and time.perf_counter() - self._last_line >= self.every:
                self._print(self._stamp(status))

    def close(self) -> None:
        self._stop.set()
        if self._heart is not None:
            self._heart.join()

    # -- phases -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def phase(self, description: str):
        """A step of seconds to minutes (held-out scoring, timing, a baseline)."""
        started = time.perf_counter()
        if not self.enabled:
            yield
            return
        if self.terminal:
            with self.console.status(f"{description} ..."):
                yield
            self._print(f"{description}: {time.perf_counter() - started:.0f}s")
            return
        self.underway()
        self._print(self._stamp(description))
        self._phase = (description, started)
        try:
            yield
        finally:
            self._phase = None

    @contextlib.contextmanager
    def search(self, executor: Executor, budget: int, search_size: int):
        """The executor the search should use: the same, counting what it does for the heartbeat's line."""
        counted = CountingExecutor(executor, search_size, on_first_submit=self.underway)
        self._search = (counted, budget)
        try:
            yield counted
        finally:
            self._search = None

    def _status(self) -> str:
        """What the heartbeat says: the search's count, or the phase running and for how long."""
        search, phase = self._search, self._phase
        if search is not None:
            counted, budget = search
            return (f"search: {counted.finished} evaluations done, {counted.spent:.1f} of the budget's {budget} "
                    "full-split evaluations started")
        if phase is not None:
            description, since = phase
            return f"{description}: running for {time.perf_counter() - since:.0f}s"
        return ""


class CountingExecutor(Executor):
    """Passes every call on to ``inner`` and counts the work, for a progress line."""

    def __init__(self, inner: Executor, search_size: int, on_first_submit=None):
        self.inner = inner
        self.capacity = inner.capacity
        self.search_size = max(1, search_size)
        self.finished = 0
        self.spent = 0.0                     # full-split evaluations submitted (racing submits parts of one)
        self._on_first_submit = on_first_submit

    def submit(self, schedule, items=None, split=None) -> None:
        if self._on_first_submit is not None:
            self._on_first_submit()
            self._on_first_submit = None
        self.spent += 1.0 if items is None else min(1.0, items / self.search_size)
        self.inner.submit(schedule, items, split)

    def pending(self) -> int:
        return self.inner.pending()

    def next_finished(self):
        finished = self.inner.next_finished()
        self.finished += 1
        return finished

    def close(self) -> None:
        """The caller that opened ``inner`` closes it."""
