"""Decode speed of schedules that execute 24, 20 and 15 of SmolLM2's 30 layers, against the full model.

Full and schedule runs are interleaved (alternating which goes first) and the median of the per-pair
ratios is reported next to the ideal ratio from the cost model (the output projection included).

    python bench/runtime_speed.py [--model smollm2-135m] [--tokens 32] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from colasearch import Schedule, load_model  # noqa: E402
from colasearch.benchmark import compare_decode_speed, device_name  # noqa: E402
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
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    model, _ = load_model(args.model)
    num_layers = fingerprint(model).num_layers
    batch_sizes = tuple(int(size) for size in args.batch_sizes.split(","))
    print(f"model {args.model} ({num_layers} layers) on {device_name(model)}; "
          f"{args.tokens} decode tokens, {args.repeats} interleaved repeats, medians of ratios")
    print("| layers run | batch | full tok/s | schedule tok/s | measured speedup | ideal speedup | measured / ideal |")
    print("|---|---|---|---|---|---|---|")
    for keep in (int(value) for value in args.keep.split(",")):
        schedule = Schedule.from_layers(balanced_keep(num_layers, keep), model=model)
        for row in compare_decode_speed(model, schedule, batch_sizes, new_tokens=args.tokens, repeats=args.repeats):
            print(f"| {keep}/{num_layers} | {row.batch_size} | {row.full_tokens_per_s:.1f} | {row.schedule_tokens_per_s:.1f} "
                  f"| {row.measured_speedup:.3f}x | {row.ideal_speedup:.3f}x | {row.efficiency:.3f} |", flush=True)


if __name__ == "__main__":
    main()
