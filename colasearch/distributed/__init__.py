"""Evaluation on Ray: actors that each hold a model replica, on a local Ray or any cluster."""

from colasearch.distributed.cluster import init_ray, shutdown_ray
from colasearch.distributed.ray_executor import EvaluatorSpec, RayExecutor

__all__ = ["EvaluatorSpec", "RayExecutor", "init_ray", "shutdown_ray"]
