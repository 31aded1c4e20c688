import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from colasearch.distributed import RayExecutor
from colasearch.executor import InProcessExecutor
from colasearch.engine.loop import run_search
from colasearch.engine.testing import PlantedEvaluator, PlantedObjective
from colasearch.searchers.base import SearchSpace, make_searcher
from colasearch.testing import make_tiny_model

TARGET = 1.3


class PlantedFactory:
    """Builds the same planted evaluator in every worker; picklable for Ray."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay

    def __call__(self):
        model = make_tiny_model("llama", num_layers=8)
        return PlantedEvaluator(model, PlantedEvaluator.random_weights(8, seed=1), delay=self.delay)


def _search(executor, budget=12, window=2):
    local = PlantedFactory()()
    space = SearchSpace.for_model(local.model, target_speedup=TARGET)
    objective = PlantedObjective(TARGET)
    searcher = make_searcher("mcts", space, objective, seed=3)
    return run_search(searcher, executor, objective, budget, window=window)


def _keys(outcome):
    return [schedule.key for schedule, _ in outcome.records]


def test_two_workers_give_the_same_result_as_one_and_as_in_process(local_ray):
    with RayExecutor(PlantedFactory(delay=0.05), workers=1) as one:
        single = _search(one)
    with RayExecutor(PlantedFactory(delay=0.05), workers=2) as two:
        double = _search(two)
    in_process = _search(InProcessExecutor(PlantedFactory()(), batch=2))
    assert single.best.key == double.best.key == in_process.best.key
    assert _keys(single) == _keys(double) == _keys(in_process)
    assert single.computed == double.computed == 12


def test_a_killed_worker_is_replaced_and_the_search_result_is_unchanged(local_ray):
    import ray

    reference = _search(InProcessExecutor(PlantedFactory()(), batch=2))
    with RayExecutor(PlantedFactory(delay=0.4), workers=2) as executor:
        victim = ray.get(executor.actors[0].pid.remote())

        def kill_mid_search():
            time.sleep(1.0)
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill_mid_search)
        killer.start()
        outcome = _search(executor)
        killer.join()
        assert executor.retried >= 1
        assert victim not in ray.get([actor.pid.remote() for actor in executor.actors])
    assert outcome.best.key == reference.best.key
    assert _keys(outcome) == _keys(reference)


def test_zero_workers_is_refused():
    from colasearch.errors import ColasearchError

    with pytest.raises(ColasearchError, match="at least one worker"):
        RayExecutor(PlantedFactory(), workers=0)


# Run in a fresh interpreter: starts Ray through colasearch, lists what every Ray process listens on (and
# whether it was handed the loopback variable), and stops Ray again.
RAY_SOCKETS = """
import json, os, socket, sys
import psutil
from colasearch.distributed.cluster import init_ray, shutdown_ray

init_ray(num_cpus=1)
try:
    import ray

    @ray.remote
    def worker_pid():
        return os.getpid()

    ray.get(worker_pid.remote())  # a worker process is up too
    report = {"listening": [], "variables": []}
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            report["listening"] += [[process.name(), connection.laddr.ip, connection.laddr.port]
                                    for connection in process.net_connections("inet") if connection.laddr and
                                    (connection.status == psutil.CONN_LISTEN or connection.type == socket.SOCK_DGRAM)]
            if process.pid != os.getpid():
                report["variables"] += [[process.name(), process.environ().get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")]]
        except psutil.NoSuchProcess:
            continue
finally:
    shutdown_ray()
print(json.dumps(report))
"""


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def test_local_ray_listens_on_loopback_only():
    # A user's environment: none of Ray's variables preset (the conftests and .ci/run set the loopback one).
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RAY_")}
    environment["OMP_NUM_THREADS"] = "1"
    finished = subprocess.run([sys.executable, "-c", RAY_SOCKETS], env=environment, capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    listeners = {name for name, _, _ in report["listening"]}
    assert {"gcs_server", "raylet"} <= listeners, report  # Ray's servers were found, so the check below checks them
    assert [row for row in report["listening"] if not _is_loopback(row[1])] == []
    # Ray's servers were handed the variable too, so the workers they start stay on loopback as well.
    handed = {name: value for name, value in report["variables"] if name in ("gcs_server", "raylet")}
    assert handed == {"gcs_server": "0", "raylet": "0"}, report


def test_a_worker_scores_the_split_it_is_asked_for(local_ray):
    # The run loop's confirmation scores schedules on the confirmation split through the same workers.
    local = PlantedFactory()()
    schedule = SearchSpace.for_model(local.model, target_speedup=TARGET).schedule_skipping([(3, "all")])
    with RayExecutor(PlantedFactory(), workers=1) as executor:
        executor.submit(schedule, None, "confirm")
        executor.submit(schedule)
        results = sorted((result.split, result.quality["acc"]) for _, result in
                         (executor.next_finished(), executor.next_finished()))
    assert results == sorted([("confirm", local.evaluate(schedule, "confirm").quality["acc"]),
                              ("search", local.evaluate(schedule).quality["acc"])])
