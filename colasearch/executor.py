"""Where evaluations run. The loop submits schedules and consumes results in the order they finish.

The in-process executor is the reference; a Ray actor pool implements the same three methods. The interface
sits below both the run loop (``colasearch.engine``) and the Ray pool (``colasearch.distributed``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque

from colasearch.results import EvalResult
from colasearch.schedule import Schedule


class Executor(ABC):
    #: How many evaluations may be in flight at once.
    capacity: int = 1

    @abstractmethod
    def submit(self, schedule: Schedule, items: int | None = None, split: str | None = None) -> None:
        """Start evaluating ``schedule`` on its first ``items`` items (all when ``None``) of ``split`` (when
        ``None``, the executor's own split: the search split)."""

    @abstractmethod
    def pending(self) -> int:
        """Evaluations submitted and not yet returned by :meth:`next_finished`."""

    @abstractmethod
    def next_finished(self) -> tuple[Schedule, EvalResult]:
        """Block until some evaluation finishes; return it."""

    def close(self) -> None:
        """Release workers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcessExecutor(Executor):
    """Evaluates in this process. ``batch`` > 1 hands several schedules to ``evaluate_many`` at once,
    so the evaluator's prefix cache sees schedules that share leading layers together."""

    def __init__(self, evaluator, split: str = "search", batch: int = 1):
        self.evaluator = evaluator
        self.split = split
        self.capacity = max(1, batch)
        self._queued: deque[tuple[Schedule, int | None, str]] = deque()
        self._done: deque[tuple[Schedule, EvalResult]] = deque()

    def submit(self, schedule: Schedule, items: int | None = None, split: str | None = None) -> None:
        self._queued.append((schedule, items, split or self.split))

    def pending(self) -> int:
        return len(self._queued) + len(self._done)

    def next_finished(self) -> tuple[Schedule, EvalResult]:
        if not self._done:
            split = self._queued[0][2]
            queued = [entry for entry in self._queued if entry[2] == split]   # one split per batch
            self._queued = deque(entry for entry in self._queued if entry[2] != split)
            batch = [schedule for schedule, _, _ in queued]
            items = [count for _, count, _ in queued]
            # Stand-in evaluators (tests) know nothing of fidelity levels: only ask for them when used.
            by_items = {"items": items} if any(count is not None for count in items) else {}
            if len(batch) == 1:
                single = {"items": items[0]} if by_items else {}
                results = [self.evaluator.evaluate(batch[0], split=split, **single)]
            else:
                results = self.evaluator.evaluate_many(batch, split=split, **by_items)
            self._done.extend(zip(batch, results))
        return self._done.popleft()
