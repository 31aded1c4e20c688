"""The run loop, written once for every searcher.

The budget counts distinct schedules evaluated. A schedule is never evaluated twice: repeats are
answered from the result cache for free. On resume, the stored records fill that cache and the
searcher (same seed) is replayed through them, so it reaches the same state without recomputing
anything; each stored record is counted once, at the point where the replay reaches it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.search.executor import Executor
from colasearch.searchers.base import BaseSearcher, SearcherError


@dataclass
class SearchOutcome:
    records: list[tuple[Schedule, EvalResult]] = field(default_factory=list)
    best: Schedule | None = None
    best_result: EvalResult | None = None
    best_value: float = float("-inf")
    computed: int = 0   # evaluations run by this process
    reused: int = 0     # evaluations read back from storage
    seconds: float = 0.0

    @property
    def evaluations(self) -> int:
        return len(self.records)


class _Progress:
    """A rich progress bar with the best objective so far and evaluations per minute."""

    def __init__(self, budget: int, label: str, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("best {task.fields[best]}"), TextColumn("{task.fields[rate]} eval/min"),
                                 TimeElapsedColumn(), transient=False)
        self.task = self.progress.add_task(label, total=budget, best="-", rate="-")
        self.started = time.perf_counter()
        self.progress.start()

    def update(self, done: int, computed: int, best: float) -> None:
        if not self.enabled:
            return
        minutes = (time.perf_counter() - self.started) / 60
        rate = f"{computed / minutes:.1f}" if computed and minutes > 0 else "-"
        self.progress.update(self.task, completed=done, best=f"{best:.4f}" if best > float("-inf") else "-", rate=rate)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


def run_search(searcher: BaseSearcher, executor: Executor, objective, budget: int, store=None, evaluator=None,
               progress: bool = False, window: int = 1, max_idle_rounds: int = 100) -> SearchOutcome:
    """Ask, evaluate, tell until ``budget`` distinct schedules are counted.

    Up to ``window`` proposals are outstanding at once; the executor evaluates them concurrently and
    each finished evaluation is stored the moment it returns. The searcher, however, is told in
    proposal order and asked only at fixed points of that order, so what it sees does not depend
    on how many workers there are or which finishes first: one worker and eight give one result.
    """
    if budget < 1:
        raise SearcherError(f"budget must be at least 1 evaluation, got {budget}")
    if window < 1:
        raise SearcherError(f"the proposal window must be at least 1, got {window}")
    started = time.perf_counter()
    stored = {schedule.key: result for schedule, result in (store.records() if store is not None else [])}
    cache: dict[str, EvalResult] = dict(stored)
    counted: set[str] = set()
    proposed: set[str] = set()
    in_flight: set[str] = set()
    outstanding: deque[Schedule] = deque()
    outcome = SearchOutcome()
    bar = _Progress(budget, searcher.name, progress)

    def account(schedule: Schedule, result: EvalResult) -> None:
        if schedule.key in counted:
            return
        counted.add(schedule.key)
        if schedule.key in stored:
            outcome.reused += 1
        outcome.records.append((schedule, result))
        value = objective.scalar(result)
        if value > outcome.best_value or outcome.best is None:
            outcome.best, outcome.best_result, outcome.best_value = schedule, result, value
        bar.update(len(counted), outcome.computed, outcome.best_value)

    try:
        searcher.prepare(evaluator)
        idle = 0
        while len(counted) < budget:
            room = min(window - len(outstanding), budget - len(proposed))
            asked = searcher.ask(room) if room > 0 and not searcher.finished else []
            for schedule in asked:
                outstanding.append(schedule)
                proposed.add(schedule.key)
                if schedule.key not in cache and schedule.key not in in_flight:
                    in_flight.add(schedule.key)
                    executor.submit(schedule)
            if outstanding and outstanding[0].key in cache:
                schedule = outstanding.popleft()
                account(schedule, cache[schedule.key])
                searcher.tell(schedule, cache[schedule.key])
                idle = 0
            elif executor.pending():
                schedule, result = executor.next_finished()
                in_flight.discard(schedule.key)
                cache[schedule.key] = result
                outcome.computed += 1
                if store is not None:
                    store.add(schedule, result, objective.values(result), objective.feasible(result))
                idle = 0
            elif searcher.finished and not outstanding:
                break
            else:
                idle += 1
                if idle > max_idle_rounds:
                    break
    finally:
        bar.close()
    outcome.seconds = time.perf_counter() - started
    return outcome
