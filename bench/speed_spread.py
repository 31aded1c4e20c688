"""How repeatable colasearch's speed protocol is: one schedule timed N times in a row, and the spread.

Each of the N figures is a whole protocol run (colasearch.speed: ABBA pairs, low-quantile per-token
times, bootstrap interval, flagged above the layer-count bound). The spread is (max - min) / median of
the N estimates, flagged or not, with the load average seen by each run.

From the same raw pairs it also prints the spread that two other statistics would have had, so a change
of estimator is judged on one set of timings: the median of the per-pair ratios (each pair's two runs are
seconds apart, so a slow drift of the machine cancels within a pair) and the mean of the lower half of
the per-pair ratios. ``--samples-out FILE`` keeps the raw pairs (JSON) for other analyses.

    python bench/speed_spread.py --schedule schedules/smollm2-135m-capitals-mcts-x1.25.yaml [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from colasearch import Schedule, load_model  # noqa: E402
from colasearch.benchmark import device_name, measure_speedup  # noqa: E402
from colasearch.cost import CostModel  # noqa: E402
from colasearch.speed import SpeedProtocol  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=SpeedProtocol.pairs)
    parser.add_argument("--tokens", type=int, default=SpeedProtocol.tokens)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--samples-out", type=Path, default=None, help="write each run's raw (full, schedule) pairs here")
    args = parser.parse_args()
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if args.runs < 2:
        parser.error("--runs must be at least 2 to have a spread")

    model, _ = load_model(args.model)
    schedule = Schedule.load(args.schedule)
    schedule.check_fits(model)
    protocol = SpeedProtocol(pairs=args.pairs, tokens=args.tokens, batch_size=args.batch_size)
    cost = CostModel.from_model(model)
    print(f"{args.schedule.name} on {args.model} ({device_name(model)}): {len(schedule.layers)} entries, ideal "
          f"{cost.ideal_speedup(schedule):.3f}x, layer-count bound {cost.layer_bound(schedule):.3f}x; "
          f"{args.runs} runs of {protocol.pairs} ABBA pairs x {protocol.tokens} tokens, batch {protocol.batch_size}")
    print("| run | estimate | 95% interval | shipped | load average | full ms/token |")
    print("|---|---|---|---|---|---|")
    estimates, runs = [], []
    for run in range(1, args.runs + 1):
        row = measure_speedup(model, schedule, protocol)
        estimates.append(row.estimate)
        runs.append(row.samples)
        shipped = row.verdict()
        print(f"| {run} | {row.estimate:.3f}x | {row.interval_text()} | {shipped} "
              f"| {row.load_average} | {row.full_seconds_per_token * 1e3:.2f} |", flush=True)
    print(f"spread of the {args.runs} estimates: {_spread(estimates)}")
    alternatives = {"median of per-pair ratios": _median_pair_ratio, "mean of the lower half of per-pair ratios":
                    _lower_half_pair_ratio}
    for name, statistic in alternatives.items():
        print(f"the same pairs, {name}: {_spread([statistic(samples) for samples in runs])}")
    if args.samples_out:
        args.samples_out.write_text(json.dumps({"schedule": str(args.schedule), "runs": runs}))


def _spread(estimates: list[float]) -> str:
    median = statistics.median(estimates)
    return (f"(max - min) / median = {(max(estimates) - min(estimates)) / median:.1%} (median {median:.3f}x, "
            f"min {min(estimates):.3f}x, max {max(estimates):.3f}x)")


def _pair_ratios(samples) -> list[float]:
    return sorted(full / scheduled for full, scheduled in samples)


def _median_pair_ratio(samples) -> float:
    return statistics.median(_pair_ratios(samples))


def _lower_half_pair_ratio(samples) -> float:
    ratios = _pair_ratios(samples)
    return statistics.fmean(ratios[: max(1, len(ratios) // 2)])


if __name__ == "__main__":
    main()
