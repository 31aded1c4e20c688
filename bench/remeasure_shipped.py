"""Re-time shipped schedule files by colasearch.speed's protocol and rewrite their ``metrics.speedup``.

Everything else in each file stays as it was. A flagged measurement is written as ``measured: null``
with its reason, interval and bound, never as a number.

    python bench/remeasure_shipped.py schedules/*.yaml [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from colasearch import Schedule, load_model  # noqa: E402
from colasearch.benchmark import device_name, measure_speedup  # noqa: E402
from colasearch.schedule import Metrics, SpeedupMetric  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schedules", type=Path, nargs="+")
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    model, _ = load_model(args.model)
    for path in args.schedules:
        schedule = Schedule.load(path)
        schedule.check_fits(model)
        measurement = measure_speedup(model, schedule)
        old = schedule.metrics.speedup if schedule.metrics and schedule.metrics.speedup else None
        ideal = old.ideal if old else None
        speedup = SpeedupMetric(ideal=ideal, device=device_name(model), **measurement.record())
        metrics = (schedule.metrics or Metrics()).model_copy(update={"speedup": speedup})
        schedule.with_fields(metrics=metrics).save(path)
        print(f"{path.name}: was {old.measured if old else None}, now {measurement.describe()} "
              f"(bound {measurement.bound:.3f}x, load {measurement.load_average})", flush=True)


if __name__ == "__main__":
    main()
