"""Ray workers and GPUs: a pool the cluster cannot hold is refused, a worker that cannot start stops the run."""

from __future__ import annotations

import pytest
import torch

from colasearch.distributed import RayExecutor
from colasearch.errors import ColasearchError


class NoGpuFactory:
    """What a worker given a GPU it cannot see runs into; picklable for Ray."""

    def __call__(self):
        from colasearch.distributed.ray_executor import assigned_gpu_device

        return assigned_gpu_device([0])  # as if Ray had assigned GPU 0


def test_more_gpus_than_the_cluster_has_is_refused_before_any_worker_starts(local_ray):
    with pytest.raises(ColasearchError, match="need 2 GPUs; the Ray cluster has 0"):
        RayExecutor(NoGpuFactory(), 2, gpus_per_worker=1)


def test_more_cpu_threads_than_the_cluster_has_is_refused_before_any_worker_starts(local_ray):
    # ``--threads`` reserves as many of Ray's CPUs per worker; Ray would wait forever for CPUs it lacks.
    with pytest.raises(ColasearchError, match="need 4 CPUs; the Ray cluster has 2"):
        RayExecutor(NoGpuFactory(), 2, cpus_per_worker=2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where torch sees no GPU")
def test_a_worker_that_cannot_start_stops_the_run_with_its_reason(local_ray):
    with pytest.raises(ColasearchError, match="Ray worker failed to start: .*will not fall back to the CPU"):
        RayExecutor(NoGpuFactory(), 1, cpus_per_worker=1)


@pytest.mark.parametrize("workers, gpus, cpus, node_cpus, sharers", [
    (4, 0.0, 1, 16, 4),    # four CPU workers fit one 16-core node: each takes a quarter of the default
    (4, 0.0, 8, 16, 2),    # the node holds only two of them
    (1, 0.0, 2, 2, 1),     # the default CPU run: one worker, the whole default
    (3, 0.0, 0, 8, 3),     # workers that reserve no CPU may all land on one node
    (4, 1.0, 1, 16, 1),    # one GPU each: each sizes against its own GPU
    (4, 0.5, 1, 16, 2),    # two replicas packed on a GPU
    (1, 0.25, 1, 16, 1),   # never more sharers than workers
])
def test_workers_on_one_memory_split_the_default_cache_bound(workers, gpus, cpus, node_cpus, sharers):
    from colasearch.distributed.ray_executor import cache_sharers

    assert cache_sharers(workers, gpus, cpus, node_cpus) == sharers


def test_a_ray_worker_counts_its_cache_sharers_from_its_own_resources(local_ray):
    import ray

    from colasearch.distributed.ray_executor import own_cache_sharers

    # The package's local Ray has 2 CPUs: two one-CPU workers share its memory, a two-CPU one has it alone.
    assert ray.get(ray.remote(num_cpus=1)(own_cache_sharers).remote(2)) == 2
    assert ray.get(ray.remote(num_cpus=1)(own_cache_sharers).remote(1)) == 1
    assert ray.get(ray.remote(num_cpus=2)(own_cache_sharers).remote(2)) == 1
    assert own_cache_sharers(2) == 1  # the driver, outside any task or actor, has its memory alone
