"""Measured cost: prefill and decode time of a schedule on the current device, cached per schedule.

``MeasuredCost.speedup`` fills ``EvalResult.measured_speedup`` (pass it to the Evaluator as
``measured_cost``); ``MeasuredConstrainedObjective`` then holds schedules to a measured target.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import ClassVar

import torch

from colasearch.objectives.constrained import ConstrainedObjective
from colasearch.results import EvalResult
from colasearch.schedule import Schedule


@dataclass(frozen=True)
class Timing:
    prefill_seconds: float
    decode_seconds: float

    @property
    def total(self) -> float:
        return self.prefill_seconds + self.decode_seconds


class MeasuredCost:
    """Times the full model and each schedule interleaved; ratios of medians, one measurement per schedule."""

    def __init__(self, model, prompt_len: int = 64, new_tokens: int = 16, batch_size: int = 1, repeats: int = 3,
                 seed: int = 0):
        self.model = model
        self.new_tokens = new_tokens
        self.repeats = repeats
        vocab = model.get_input_embeddings().weight.shape[0]
        generator = torch.Generator().manual_seed(seed)
        device = next(model.parameters()).device
        self.prompt = torch.randint(3, vocab, (batch_size, prompt_len), generator=generator).to(device)
        self._speedups: dict[str, float] = {}
        self.timings: dict[str, Timing] = {}

    def time(self, schedule: Schedule | None) -> Timing:
        from colasearch.benchmark import decode_seconds, prefill_seconds
        from colasearch.runtime import scheduled

        with scheduled(self.model, schedule):
            prefill = prefill_seconds(self.model, self.prompt)
            decode = decode_seconds(self.model, self.prompt, self.new_tokens)
        return Timing(prefill, decode)

    def speedup(self, schedule: Schedule | None) -> float:
        if schedule is None:
            return 1.0
        if schedule.key not in self._speedups:
            self.time(None), self.time(schedule)  # warm-up, not counted
            ratios = []
            for repeat in range(self.repeats):
                order = (None, schedule) if repeat % 2 == 0 else (schedule, None)
                timings = {variant is None: self.time(variant) for variant in order}
                ratios.append(timings[True].total / timings[False].total)
                self.timings[schedule.key] = timings[False]
            self._speedups[schedule.key] = statistics.median(ratios)
        return self._speedups[schedule.key]


class MeasuredConstrainedObjective(ConstrainedObjective):
    """Maximize quality subject to *measured* speedup >= target; the ideal ratio stands in when none was measured."""

    name: ClassVar[str] = "measured"

    def speedup(self, result: EvalResult) -> float:
        return result.measured_speedup if result.measured_speedup is not None else result.ideal_speedup
