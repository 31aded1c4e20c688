"""Decode timing of a model under a schedule, measured by the one protocol of :mod:`colasearch.speed`."""

from __future__ import annotations

import inspect
import platform
from collections.abc import Callable
from time import perf_counter

import torch

from colasearch.cost import CostModel
from colasearch.devices import model_device, model_dtype, synchronize
from colasearch.runtime import scheduled
from colasearch.schedule import Schedule
from colasearch.speed import FULL, SpeedMeasurement, SpeedProtocol, default_protocol, measure_pairs


def cache_kwarg(model) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; accept both."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def device_name(model=None) -> str:
    device = model_device(model) if model is not None else torch.device("cpu")
    precision = f", {str(model_dtype(model)).removeprefix('torch.')}" if model is not None else ""
    if device.type == "cuda":
        split = getattr(model, "hf_device_map", None)
        devices = len({str(place) for place in split.values()}) if split else 1
        return torch.cuda.get_device_name(device) + (f" x{devices}" if devices > 1 else "") + precision
    if device.type != "cpu":
        return f"{device.type}{precision}"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads{precision})"


@torch.no_grad()
def decode_seconds(model, input_ids: torch.Tensor, new_tokens: int, clock: Callable[[], float] = perf_counter) -> float:
    """Seconds spent on ``new_tokens`` greedy decode steps after the prompt's prefill."""
    cache = new_cache(model)
    kwargs = {cache_kwarg(model): cache, "use_cache": True, "logits_to_keep": 1}
    token = model(input_ids=input_ids, **kwargs).logits[:, -1:].argmax(-1)
    _synchronize(input_ids.device)
    start = clock()
    for _ in range(new_tokens):
        token = model(input_ids=token, **kwargs).logits[:, -1:].argmax(-1)
    _synchronize(input_ids.device)
    return clock() - start


@torch.no_grad()
def prefill_seconds(model, input_ids: torch.Tensor) -> float:
    _synchronize(input_ids.device)
    start = perf_counter()
    model(input_ids=input_ids, use_cache=False, logits_to_keep=1)
    _synchronize(input_ids.device)
    return perf_counter() - start


def _synchronize(device: torch.device) -> None:
    synchronize(device)


def random_prompt(model, protocol: SpeedProtocol) -> torch.Tensor:
    generator = torch.Generator().manual_seed(protocol.seed)
    vocab = model.get_input_embeddings().weight.shape[0]
    shape = (protocol.batch_size, protocol.prompt_tokens)
    return torch.randint(3, vocab, shape, generator=generator).to(model_device(model))


def measure_speedup(model, schedule: Schedule | None, protocol: SpeedProtocol | None = None,
                    force: bool = False, clock: Callable[[], float] = perf_counter) -> SpeedMeasurement:
    """Decode speed of ``schedule`` against the full model by :mod:`colasearch.speed`'s protocol.

    Ray and any other work of this process must be stopped first: the protocol only makes a shared
    machine's noise visible, it cannot remove it.
    """
    protocol = protocol or default_protocol()
    prompt = random_prompt(model, protocol)

    def seconds_per_token(variant: str) -> float:
        with scheduled(model, None if variant == FULL else schedule, force=force):
            return decode_seconds(model, prompt, protocol.tokens, clock) / protocol.tokens

    bound = CostModel.from_model(model).layer_bound(schedule)
    return measure_pairs(seconds_per_token, bound, protocol, device_name(model))
