"""Decode speed of schedules that execute 24, 20 and 15 of SmolLM2's 30 layers, against the full model.

Measured by colasearch.speed's protocol (ABBA pairs, low-quantile per-token times, bootstrap interval,
flagged above the layer-count bound), next to the ideal ratio from the cost model (the head included).

    python bench/runtime_speed.py [--model smollm2-135m] [--tokens 64] [--pairs 12]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from colasearch import Schedule, load_model  # noqa: E402
from colasearch.benchmark import device_name, measure_speedup  # noqa: E402
from colasearch.cost import CostModel  # noqa: E402
from colasearch.speed import SpeedProtocol  # noqa: E402
from colasearch.fingerprint import fingerprint  # noqa: E402


def balanced_keep(num_layers: int, keep: int) -> list[int]:
    """Drop layers evenly from the middle, keeping the first and the last."""
    drop = num_layers - keep
    inner = list(range(1, num_layers - 1))
    dropped = {inner[round((i + 0.5) * len(inner) / drop - 0.5)] for i in range(drop)}
    return [layer for layer in range(num_layers) if layer not in dropped]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--keep", default="24,20,15")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=12)
    args = parser.parse_args()

    model, _ = load_model(args.model)
    num_layers = fingerprint(model).num_layers
    batch_sizes = tuple(int(size) for size in args.batch_sizes.split(","))
    cost = CostModel.from_model(model)
    print(f"model {args.model} ({num_layers} layers) on {device_name(model)}; {args.pairs} ABBA pairs of "
          f"{args.tokens} decode tokens (colasearch.speed)")
    print("| layers run | batch | full tok/s | schedule tok/s | measured speedup | 95% interval | layer bound "
          "| ideal speedup |")
    print("|---|---|---|---|---|---|---|---|")
    for keep in (int(value) for value in args.keep.split(",")):
        schedule = Schedule.from_layers(balanced_keep(num_layers, keep), model=model)
        for batch in batch_sizes:
            row = measure_speedup(model, schedule, SpeedProtocol(pairs=args.pairs, tokens=args.tokens, batch_size=batch))
            measured = row.verdict()
            print(f"| {keep}/{num_layers} | {batch} | {batch / row.full_seconds_per_token:.1f} "
                  f"| {batch / row.schedule_seconds_per_token:.1f} | {measured} "
                  f"| {row.interval_text()} | {row.bound:.3f}x "
                  f"| {cost.ideal_speedup(schedule):.3f}x |", flush=True)


if __name__ == "__main__":
    main()
