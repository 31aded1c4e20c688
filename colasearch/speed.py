"""The one protocol by which colasearch measures a schedule's speedup, and the rule that flags a figure.

Decode time per token is roughly ``a + L*b`` (a fixed part, then L layers), so a schedule that runs
fewer layers can never be faster than ``full layers / scheduled layers``: the *layer-count bound*.
A single short timing on a shared machine easily claims more (a noisy pair, a full model that happened
to run while another process woke up). So:

- the full model (A) and the schedule (B) run in ABBA-balanced pairs: AB, BA, AB, BA, ... so that
  neither always runs first, into caches the other warmed, or in the same phase of a background load;
- each run decodes ``tokens`` tokens after a warm-up of the same length, and is divided by them;
- each variant's per-token time is the minimum of its runs (``quantile`` 0; a low quantile if set): on a
  shared machine interference only ever adds time, so the fastest runs are the closest to the hardware's
  own speed. On SmolLM2 on 2 idle CPU cores, 12 pairs gave a 95% interval 5% wide with the minimum,
  8% with the 10% quantile and 15% with the 20% quantile or the median (BENCHMARKS.md, issue 29);
- the speedup is the ratio of the two quantiles, with a percentile bootstrap interval over pairs;
- a figure above the layer-count bound, or with an interval wider than ``max_relative_width`` of
  itself, is *flagged*: ``speedup`` is ``None`` and ``flag`` says why. It is never shipped as a number.

This module is pure (a timer is passed in), so the protocol is tested with a fake clock.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

FULL, SCHEDULE = "full", "schedule"


@dataclass(frozen=True)
class SpeedProtocol:
    """How a speedup is measured; every command and benchmark uses these defaults unless told otherwise."""

    pairs: int = 12
    tokens: int = 64
    prompt_tokens: int = 16
    batch_size: int = 1
    quantile: float = 0.0
    resamples: int = 2000
    confidence: float = 0.95
    # An interval wider than this share of the estimate is too wide to ship.
    max_relative_width: float = 0.10
    seed: int = 0

    def __post_init__(self):
        if self.pairs < 2 or self.pairs % 2:
            raise ValueError(f"pairs must be an even number >= 2 (ABBA balance), got {self.pairs}")
        if self.tokens < 1 or self.prompt_tokens < 1 or self.batch_size < 1:
            raise ValueError("tokens, prompt_tokens and batch_size must be >= 1")
        if not 0.0 <= self.quantile <= 0.5:
            raise ValueError(f"quantile must be in [0, 0.5], got {self.quantile}")

    def orders(self) -> list[tuple[str, str]]:
        """ABBA balance: every second pair runs the schedule first."""
        return [(FULL, SCHEDULE) if index % 2 == 0 else (SCHEDULE, FULL) for index in range(self.pairs)]


#: What run, eval, the measured objective and the bench scripts use unless told otherwise.
DEFAULT_PROTOCOL = SpeedProtocol()


def default_protocol() -> SpeedProtocol:
    """Looked up at call time, so that a test (or an embedding application) can set it once."""
    return DEFAULT_PROTOCOL


@dataclass(frozen=True)
class SpeedMeasurement:
    """A measured speedup, or the reason none is shipped, with what it was measured on."""

    speedup: float | None
    estimate: float
    interval: tuple[float, float]
    bound: float
    pairs: int
    tokens: int
    batch_size: int
    quantile: float
    full_seconds_per_token: float
    schedule_seconds_per_token: float
    load_average: float | None
    flag: str | None = None
    device: str | None = None
    # Per-pair per-token seconds, (full, schedule): the raw evidence, for a bench or a test to read.
    samples: tuple[tuple[float, float], ...] = field(default=(), repr=False)

    @property
    def shipped(self) -> bool:
        return self.speedup is not None

    # Every place that shows a measurement words it here, so a flagged figure never reads as a number.
    def describe(self) -> str:
        """The figure with its interval, or why none is shipped."""
        return f"{self.verdict()} [{self.interval_text()}]" if self.shipped else self.verdict()

    def verdict(self) -> str:
        """``1.280x``, or ``flagged (the reason)``."""
        return f"{self.speedup:.3f}x" if self.shipped else f"flagged ({self.flag})"

    def cell(self, digits: int = 3) -> str:
        """A table cell: the figure, or ``flagged`` with the unshipped estimate, marked as doubtful."""
        return f"{self.speedup:.3f}x" if self.shipped else f"flagged ({self.estimate:.{digits}f}x?)"

    def interval_text(self, digits: int = 3) -> str:
        low, high = self.interval
        return f"{low:.{digits}f}-{high:.{digits}f}"

    def sentence(self, label: str) -> str:
        """One line with what a table cell has no room for: interval, pairs, tokens, bound and load."""
        if not self.shipped:
            return f"measured speedup of {label} not shipped: {self.flag}"
        return (f"measured speedup of {label}: {self.speedup:.3f}x, 95% interval {self.interval_text()} over "
                f"{self.pairs} pairs of {self.tokens} tokens (layer-count bound {self.bound:.3f}x, load average "
                f"{self.load_average})")

    def record(self) -> dict:
        """What a schedule file keeps next to the figure (``metrics.speedup``)."""
        low, high = self.interval
        return {"measured": self.speedup, "interval": [round(low, 4), round(high, 4)],
                "bound": round(self.bound, 4), "pairs": self.pairs, "tokens": self.tokens,
                "batch_size": self.batch_size, "load_average": self.load_average, "flag": self.flag}

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("samples")
        return data


def load_average() -> float | None:
    """The one-minute load average, where the platform has one: a busy machine shows here."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def time_pairs(time_run: Callable[[str], float], protocol: SpeedProtocol) -> list[tuple[float, float]]:
    """``time_run(variant)`` -> seconds per token of one run; returns (full, schedule) per pair, ABBA order.

    One warm-up run of each variant, at full length, comes first and is not counted.
    """
    time_run(FULL), time_run(SCHEDULE)
    samples = []
    for order in protocol.orders():
        seconds = {variant: time_run(variant) for variant in order}
        samples.append((seconds[FULL], seconds[SCHEDULE]))
    return samples


def _ratio(full: np.ndarray, schedule: np.ndarray, quantile: float) -> float:
    return float(np.quantile(full, quantile) / np.quantile(schedule, quantile))


def summarize(samples: list[tuple[float, float]], bound: float, protocol: SpeedProtocol,
              load: float | None = None, device: str | None = None) -> SpeedMeasurement:
    """The speedup of the pairs with its bootstrap interval, flagged if it cannot be trusted."""
    data = np.asarray(samples, dtype=float)
    if data.ndim != 2 or data.shape[1] != 2 or len(data) < 2 or not np.all(data > 0):
        raise ValueError("need at least two pairs of positive per-token times")
    full, schedule = data[:, 0], data[:, 1]
    estimate = _ratio(full, schedule, protocol.quantile)
    generator = np.random.default_rng(protocol.seed)
    picks = generator.integers(0, len(data), size=(protocol.resamples, len(data)))
    # Pairs are resampled whole, so a slow moment that hit both runs of a pair stays paired.
    ratios = np.quantile(full[picks], protocol.quantile, axis=1) / np.quantile(schedule[picks], protocol.quantile, axis=1)
    tail = (1 - protocol.confidence) / 2
    low, high = (float(value) for value in np.quantile(ratios, [tail, 1 - tail]))
    flag = None
    if estimate > bound:
        flag = (f"{estimate:.3f}x is above the layer-count bound {bound:.3f}x, which no real run can beat: "
                "timing noise")
    elif (high - low) > protocol.max_relative_width * estimate:
        flag = (f"the {protocol.confidence:.0%} interval [{low:.3f}, {high:.3f}] is wider than "
                f"{protocol.max_relative_width:.0%} of {estimate:.3f}x: too noisy to ship (a busy machine?)")
    return SpeedMeasurement(
        speedup=None if flag else estimate, estimate=estimate, interval=(low, high), bound=bound,
        pairs=len(data), tokens=protocol.tokens, batch_size=protocol.batch_size, quantile=protocol.quantile,
        full_seconds_per_token=float(np.quantile(full, protocol.quantile)),
        schedule_seconds_per_token=float(np.quantile(schedule, protocol.quantile)),
        load_average=load, flag=flag, device=device, samples=tuple(map(tuple, data.tolist())))


def measure_pairs(time_run: Callable[[str], float], bound: float, protocol: SpeedProtocol,
                  device: str | None = None) -> SpeedMeasurement:
    """Time the pairs and summarize them; the load average is the higher of before and after."""
    before = load_average()
    samples = time_pairs(time_run, protocol)
    after = load_average()
    loads = [value for value in (before, after) if value is not None]
    return summarize(samples, bound, protocol, max(loads) if loads else None, device)
