"""Ray actor pool behind the run loop's :class:`~colasearch.search.executor.Executor` protocol.

Each actor builds its own evaluator (model replica, prefix cache) once. Schedules are dispatched to
idle actors and consumed as they finish. An actor that dies mid-evaluation (killed, out of memory)
is replaced and its evaluation retried on another actor; evaluations are deterministic, so the
search reaches the result a fault-free run gives.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Callable

from colasearch.errors import ColasearchError
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.search.executor import Executor


@dataclass(frozen=True)
class EvaluatorSpec:
    """Everything a worker needs to build its own evaluator; small and picklable."""

    model: str
    task: str
    search_size: int = 64
    heldout_size: int = 200
    seed: int = 0
    # Further Evaluator keyword options as sorted (name, value) pairs (e.g. speculative_prompts, draft_tokens),
    # so a worker's results carry the same ``extra`` entries as an in-process evaluation.
    options: tuple[tuple[str, object], ...] = ()

    def __call__(self):
        from colasearch.evaluator import Evaluator
        from colasearch.loading import load_model
        from colasearch.tasks import load_task

        model, tokenizer = load_model(self.model)
        return Evaluator(model, tokenizer, load_task(self.task), search_size=self.search_size,
                         heldout_size=self.heldout_size, seed=self.seed, **dict(self.options))


class _EvaluatorWorker:
    def __init__(self, factory: Callable[[], object], threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        self.evaluator = factory()

    def evaluate(self, schedule: Schedule | None, split: str, items: int | None = None) -> EvalResult:
        if items is None:
            return self.evaluator.evaluate(schedule, split=split)
        return self.evaluator.evaluate(schedule, split=split, items=items)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor(Executor):
    def __init__(self, factory: Callable[[], object], workers: int, split: str = "search", gpus_per_worker: float = 0,
                 cpus_per_worker: float | None = None, max_retries: int = 3):
        import ray

        if workers < 1:
            raise ColasearchError(f"a Ray executor needs at least one worker, got {workers}")
        total_cpus = int(ray.cluster_resources().get("CPU", 1))
        self._cpus = cpus_per_worker if cpus_per_worker is not None else max(1, total_cpus // workers)
        self._actor_class = ray.remote(num_cpus=self._cpus, num_gpus=gpus_per_worker)(_EvaluatorWorker)
        self._factory = factory
        self._threads = int(max(1, self._cpus))
        self.split = split
        self.capacity = workers
        self.max_retries = max_retries
        self.actors = [self._spawn() for _ in range(workers)]
        self._idle = deque(self.actors)
        self._queue: deque[tuple[Schedule, int | None, int]] = deque()
        self._running: dict = {}
        self.retried = 0

    def _spawn(self):
        return self._actor_class.remote(self._factory, self._threads)

    def submit(self, schedule: Schedule, items: int | None = None) -> None:
        self._queue.append((schedule, items, 0))
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            schedule, items, attempts = self._queue.popleft()
            actor = self._idle.popleft()
            self._running[actor.evaluate.remote(schedule, self.split, items)] = (schedule, items, actor, attempts)

    def pending(self) -> int:
        return len(self._queue) + len(self._running)

    def next_finished(self) -> tuple[Schedule, EvalResult]:
        import ray
        from ray.exceptions import RayActorError

        while True:
            ready, _ = ray.wait(list(self._running), num_returns=1)
            reference = ready[0]
            schedule, items, actor, attempts = self._running.pop(reference)
            try:
                result = ray.get(reference)
            except RayActorError:
                self._replace(actor)
                if attempts + 1 > self.max_retries:
                    raise ColasearchError(f"evaluation of {schedule.chain!r} failed on {attempts + 1} workers") from None
                self.retried += 1
                self._queue.appendleft((schedule, items, attempts + 1))
                self._dispatch()
                continue
            self._idle.append(actor)
            self._dispatch()
            return schedule, result

    def _replace(self, dead) -> None:
        import ray

        ray.kill(dead, no_restart=True)
        fresh = self._spawn()
        self.actors[self.actors.index(dead)] = fresh
        self._idle.append(fresh)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors.clear()
        self._idle.clear()
