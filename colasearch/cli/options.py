"""Options shared by every command that loads a model: one definition each, so their help and checks agree."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

DeviceOption = Annotated[str, typer.Option(
    "--device", help="Where the model runs: auto (the first GPU if there is one, else the CPU), cpu, cuda, cuda:N or mps.")]
DtypeOption = Annotated[str, typer.Option(
    "--dtype", help="Weights' precision: auto (bfloat16 on a GPU, float32 on the CPU), float32, bfloat16 or float16.")]
DeviceMapOption = Annotated[Optional[str], typer.Option(
    "--device-map", help="Split one model over this node's GPUs with accelerate (auto, balanced, sequential); "
                         "for models larger than one GPU.")]
PrefixCacheOption = Annotated[Optional[int], typer.Option(
    "--prefix-cache-mb", help="Bound of the evaluators' cache of hidden states, in MiB, shared by all the "
                              "evaluators of the command (default: a quarter of the free memory of the model's "
                              "device, 256 MiB to 32 GiB).")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    "--threads", help="CPU threads of each evaluator: this process's and each Ray worker's, which also reserves "
                      "as many of Ray's CPUs (default: torch's own, the cores, in this process; a Ray worker: the "
                      "cluster's CPUs divided among the workers). Give the cores that are free where other work "
                      "shares the machine: threads that outnumber them wait on each other.")]


def placement(device: str, dtype: str, device_map: str | None = None):
    """Check the three flags before anything loads; a device that is not there exits 2 with one line."""
    from colasearch.devices import resolve_placement

    return resolve_placement(device, dtype, device_map)


def use_threads(threads: int | None) -> None:
    """Set this process's torch threads from ``--threads``; ``None`` keeps torch's own default."""
    from colasearch.cli.prechecks import check_at_least

    check_at_least(threads, 1, "--threads")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def load(model: str, device: str, dtype: str, device_map: str | None = None):
    """``load_model`` at the placement the flags ask for."""
    from colasearch.loading import load_model

    chosen = placement(device, dtype, device_map)
    return load_model(model, dtype=chosen.dtype, device=str(chosen.device), device_map=chosen.device_map)
