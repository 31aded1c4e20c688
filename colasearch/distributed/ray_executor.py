"""Ray actor pool behind the run loop's :class:`~colasearch.executor.Executor` protocol.

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
from colasearch.evaluator.config import EvaluatorConfig
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.executor import Executor


@dataclass(frozen=True)
class EvaluatorSpec:
    """Everything a worker needs to build its own evaluator; small and picklable."""

    model: str
    task: str
    # The run's evaluator config as is (splits, speculative drafts, dense KL, timing), so a worker's results
    # are those of an in-process evaluation.
    evaluator: EvaluatorConfig = EvaluatorConfig()
    # Where the replica goes, as the driver resolved it. With ``gpus > 0`` the device is the GPU Ray
    # assigned to this worker instead, whatever ``device`` says.
    device: str = "cpu"
    dtype: str = "float32"
    device_map: str | None = None
    gpus: float = 0.0
    # The run's worker count: without an explicit prefix_cache_mb, the workers that share this one's memory
    # split the default bound (see ``cache_sharers``).
    workers: int = 1

    def __call__(self):
        from colasearch.devices import default_cache_bytes
        from colasearch.loading import load_model
        from colasearch.evaluator import Evaluator
        from colasearch.tasks import load_task

        device = assigned_gpu_device() if self.gpus > 0 else self.device
        model, tokenizer = load_model(self.model, dtype=self.dtype, device=device, device_map=self.device_map)
        config = self.evaluator
        if config.prefix_cache_mb is None and self.workers > 1:
            sharers = own_cache_sharers(self.workers)
            if sharers > 1:
                config = config.model_copy(update={"prefix_cache_mb": default_cache_bytes(model, sharers=sharers) // 2**20})
        return Evaluator(model, tokenizer, load_task(self.task), config)


def cache_sharers(workers: int, gpus: float, cpus: float, node_cpus: float) -> int:
    """How many of a run's ``workers`` may size their prefix caches against the memory this worker's draws on.

    Why: each worker sizes its default bound as a quarter of the memory free when it starts, and workers
    start together, so N replicas on one machine would take N quarters of its RAM. On a GPU the sharers are
    the replicas Ray packs on it (``gpus`` < 1 each); on the CPU, the workers the node has CPUs for
    (``node_cpus // cpus``, all of them when a worker reserves none). Never more than the run's workers.
    """
    if gpus > 0:
        per_device = int(1 / gpus + 1e-9) if gpus < 1 else 1
    else:
        per_device = int(node_cpus // cpus) if cpus > 0 else workers
    return max(1, min(workers, per_device))


def own_cache_sharers(workers: int) -> int:
    """``cache_sharers`` for the Ray worker this runs in, from the resources Ray assigned it and its node's CPUs."""
    import ray

    if not ray.is_initialized():
        return 1
    context = ray.get_runtime_context()
    try:
        assigned = context.get_assigned_resources()
    except AssertionError:  # Ray asserts it is asked from a task or an actor: the driver splits nothing
        return 1
    node = next((node for node in ray.nodes() if node.get("NodeID") == context.get_node_id()), {})
    return cache_sharers(workers, assigned.get("GPU", 0.0), assigned.get("CPU", 0.0),
                         node.get("Resources", {}).get("CPU", 0.0))


def assigned_gpu_device(gpu_ids: list | None = None) -> str:
    """The device of a Ray worker that reserved GPUs. Ray narrows CUDA_VISIBLE_DEVICES to the worker's own
    GPUs, so they are ``cuda:0`` onward here. A worker given a GPU that torch cannot see fails: a replica
    silently on the CPU would make the whole search crawl while the GPU sits idle."""
    import torch

    if gpu_ids is None:
        import ray

        gpu_ids = ray.get_gpu_ids()
    if not gpu_ids or not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise ColasearchError(f"a Ray worker was given GPU(s) {list(gpu_ids) or 'none'} but torch {torch.__version__} "
                              f"sees no CUDA device (CUDA_VISIBLE_DEVICES={visible!r}); it will not fall back to the CPU")
    return "cuda:0"


class _EvaluatorWorker:
    def __init__(self, factory: Callable[[], object], threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        # A failure to build the evaluator (no GPU, model missing) is kept and reported by ``ready``, so the
        # driver shows its message instead of retrying a worker that can never start.
        self.startup_error = None
        try:
            self.evaluator = factory()
        except Exception as error:  # noqa: BLE001 - reported to the driver as one line
            self.startup_error = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"

    def ready(self) -> str | None:
        return self.startup_error

    def evaluate(self, schedule: Schedule | None, split: str, items: int | None = None) -> EvalResult:
        if self.startup_error:
            raise RuntimeError(self.startup_error)
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
        resources = ray.cluster_resources()
        total_cpus = int(resources.get("CPU", 1))
        if gpus_per_worker < 0:
            raise ColasearchError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker:g}")
        # Ray would wait forever for GPUs the cluster does not have; say so instead.
        needed, present = workers * gpus_per_worker, resources.get("GPU", 0.0)
        if needed > present + 1e-9:
            raise ColasearchError(f"{workers} worker(s) x {gpus_per_worker:g} GPU need {needed:g} GPUs; the Ray cluster "
                                  f"has {present:g}")
        if cpus_per_worker is not None and workers * cpus_per_worker > total_cpus:
            raise ColasearchError(f"{workers} worker(s) x {cpus_per_worker:g} CPU threads need {workers * cpus_per_worker:g} "
                                  f"CPUs; the Ray cluster has {total_cpus}")
        self._cpus = cpus_per_worker if cpus_per_worker is not None else max(1, total_cpus // workers)
        self._actor_class = ray.remote(num_cpus=self._cpus, num_gpus=gpus_per_worker)(_EvaluatorWorker)
        self._factory = factory
        self._threads = int(max(1, self._cpus))
        self.split = split
        self.capacity = workers
        self.max_retries = max_retries
        self.actors = [self._spawn() for _ in range(workers)]
        self._idle = deque(self.actors)
        self._queue: deque[tuple[Schedule, int | None, str, int]] = deque()
        self._running: dict = {}
        self.retried = 0
        self._check_started(self.actors)

    def _spawn(self):
        return self._actor_class.remote(self._factory, self._threads)

    def _check_started(self, actors) -> None:
        """Wait until every worker built its evaluator; a worker that cannot (e.g. no GPU) stops the run."""
        import ray
        from ray.exceptions import RayActorError

        try:
            errors = [error for error in ray.get([actor.ready.remote() for actor in actors]) if error]
        except RayActorError as error:
            errors = [f"a worker died while starting: {str(error).strip().splitlines()[0]}"]
        if errors:
            self.close()
            raise ColasearchError(f"Ray worker failed to start: {errors[0]}")

    def submit(self, schedule: Schedule, items: int | None = None, split: str | None = None) -> None:
        self._queue.append((schedule, items, split or self.split, 0))
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            schedule, items, split, attempts = self._queue.popleft()
            actor = self._idle.popleft()
            self._running[actor.evaluate.remote(schedule, split, items)] = (schedule, items, split, actor, attempts)

    def pending(self) -> int:
        return len(self._queue) + len(self._running)

    def next_finished(self) -> tuple[Schedule, EvalResult]:
        import ray
        from ray.exceptions import RayActorError

        while True:
            ready, _ = ray.wait(list(self._running), num_returns=1)
            reference = ready[0]
            schedule, items, split, actor, attempts = self._running.pop(reference)
            try:
                result = ray.get(reference)
            except RayActorError:
                self._replace(actor)
                if attempts + 1 > self.max_retries:
                    raise ColasearchError(f"evaluation of {schedule.chain!r} failed on {attempts + 1} workers") from None
                self.retried += 1
                self._queue.appendleft((schedule, items, split, attempts + 1))
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
