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
