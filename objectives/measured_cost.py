"""Measured cost: a schedule's decode speedup on this device, by the protocol of ``colasearch.speed``.

``MeasuredCost.speedup`` fills ``EvalResult.measured_speedup`` (the Evaluator builds one when given
``measure_speed=True``, so Ray workers time on their own device); ``MeasuredConstrainedObjective``
then holds schedules to the target by that figure instead of the ideal one.
"""

from __future__ import annotations

from typing import ClassVar

from colasearch.objectives.constrained import ConstrainedObjective
from colasearch.results import EvalResult
from colasearch.schedule import Schedule


class MeasuredCost:
    """Times each schedule against the full model once per device, by the one protocol of colasearch.speed.

    The search needs a number for every candidate, flagged or not; it takes the protocol's estimate capped
    at the layer-count bound, since no real run is faster than that. What ships is measured again at the
    end of the run and flagged there if it cannot be trusted.
    """

    def __init__(self, model, protocol=None, force: bool = False, clock=None):
        from time import perf_counter

        from colasearch.benchmark import device_name
        from colasearch.speed import default_protocol

        self.model = model
        self.clock = clock or perf_counter
        self.protocol = protocol or default_protocol()
        self.force = force
        self.device = device_name(model)
        self.measurements: dict[tuple[str, str], object] = {}

    def measure(self, schedule: Schedule):
        from colasearch.benchmark import measure_speedup

        key = (schedule.key, self.device)
        if key not in self.measurements:
            self.measurements[key] = measure_speedup(self.model, schedule, self.protocol, self.force, self.clock)
        return self.measurements[key]

    def speedup(self, schedule: Schedule | None) -> float:
        if schedule is None:
            return 1.0
        measurement = self.measure(schedule)
        return min(measurement.estimate, measurement.bound)


class MeasuredConstrainedObjective(ConstrainedObjective):
    """Maximize quality subject to *measured* speedup >= target. A result that was not timed is infeasible:
    standing in the ideal ratio would make this objective ``constrained`` under another name."""

    name: ClassVar[str] = "measured"

    def speedup(self, result: EvalResult) -> float:
        return result.measured_speedup if result.measured_speedup is not None else 0.0
