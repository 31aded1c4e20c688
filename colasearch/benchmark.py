"""Measured decode speed of a schedule against the full model: interleaved runs, medians of ratios."""

from __future__ import annotations

import inspect
import platform
import statistics
from dataclasses import dataclass
from time import perf_counter

import torch

from colasearch.cost import CostModel
from colasearch.devices import model_device, model_dtype, synchronize
from colasearch.runtime import scheduled
from colasearch.schedule import Schedule


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
def decode_seconds(model, input_ids: torch.Tensor, new_tokens: int) -> float:
    """Seconds spent on ``new_tokens`` greedy decode steps after the prompt's prefill."""
    cache = new_cache(model)
    kwargs = {cache_kwarg(model): cache, "use_cache": True, "logits_to_keep": 1}
    token = model(input_ids=input_ids, **kwargs).logits[:, -1:].argmax(-1)
    _synchronize(input_ids.device)
    start = perf_counter()
    for _ in range(new_tokens):
        token = model(input_ids=token, **kwargs).logits[:, -1:].argmax(-1)
    _synchronize(input_ids.device)
    return perf_counter() - start


@torch.no_grad()
def prefill_seconds(model, input_ids: torch.Tensor) -> float:
    _synchronize(input_ids.device)
    start = perf_counter()
    model(input_ids=input_ids, use_cache=False, logits_to_keep=1)
    _synchronize(input_ids.device)
    return perf_counter() - start


def _synchronize(device: torch.device) -> None:
    synchronize(device)


@dataclass(frozen=True)
class SpeedRow:
    batch_size: int
    full_tokens_per_s: float
    schedule_tokens_per_s: float
    measured_speedup: float
    ideal_speedup: float

    @property
    def efficiency(self) -> float:
        return self.measured_speedup / self.ideal_speedup


def compare_decode_speed(model, schedule: Schedule, batch_sizes=(1, 8), new_tokens: int = 32, prompt_len: int = 16,
                         repeats: int = 5, seed: int = 0, force: bool = False) -> list[SpeedRow]:
    """Interleave full and schedule runs, alternating which goes first, and take medians of ratios."""
    ideal = CostModel.from_model(model).ideal_speedup(schedule)
    generator = torch.Generator().manual_seed(seed)
    vocab = model.get_input_embeddings().weight.shape[0]
    device = model_device(model)
    rows = []
    for batch_size in batch_sizes:
        prompt = torch.randint(3, vocab, (batch_size, prompt_len), generator=generator).to(device)
        for variant in (None, schedule):  # warm-up, not timed
            with scheduled(model, variant, force=force):
                decode_seconds(model, prompt, 2)
        full_times, schedule_times, ratios = [], [], []
        for repeat in range(repeats):
            order = (None, schedule) if repeat % 2 == 0 else (schedule, None)
            times = {}
            for variant in order:
                with scheduled(model, variant, force=force):
                    times[variant is None] = decode_seconds(model, prompt, new_tokens)
            full_times.append(times[True])
            schedule_times.append(times[False])
            ratios.append(times[True] / times[False])
        tokens = batch_size * new_tokens
        rows.append(SpeedRow(batch_size, tokens / statistics.median(full_times),
                             tokens / statistics.median(schedule_times), statistics.median(ratios), ideal))
    return rows
