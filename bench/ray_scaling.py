"""Candidate evaluations per minute with 1 and 2 Ray workers on the embedded model.

The same MCTS search (same seed, same proposal window) runs with each worker count; the schedules
evaluated are identical, so only the wall time differs.

    python bench/ray_scaling.py [--budget 16] [--task builtin:capitals] [--search-size 32]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from colasearch.distributed import EvaluatorSpec, RayExecutor, init_ray  # noqa: E402
from colasearch.evaluator.config import EvaluatorConfig  # noqa: E402
from colasearch.engine.loop import run_search  # noqa: E402
from colasearch.engine.session import RunContext  # noqa: E402
from colasearch.searchers.base import make_searcher  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="builtin:capitals")
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--search-size", type=int, default=32)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--window", type=int, default=4)
    args = parser.parse_args()

    context = RunContext.load(args.model, args.task, args.search_size, 8)
    spec = EvaluatorSpec(args.model, args.task, EvaluatorConfig(search_size=args.search_size, heldout_size=8))
    init_ray()
    print(f"{os.cpu_count()} CPU cores; model {args.model}, task {args.task}, {args.search_size} search items, "
          f"budget {args.budget}, window {args.window}")
    print("| workers | evaluations | wall s | evaluations/min | speedup vs 1 worker |")
    print("|---|---|---|---|---|")
    base = None
    for workers in (int(value) for value in args.workers.split(",")):
        with RayExecutor(spec, workers) as executor:
            # Warm each worker (model load) before timing.
            for _ in range(workers):
                executor.submit(None)
            while executor.pending():
                executor.next_finished()
            objective = context.objective("constrained", 1.25)
            searcher = make_searcher("mcts", context.space(1.25), objective, seed=0)
            started = time.perf_counter()
            outcome = run_search(searcher, executor, objective, args.budget, window=args.window)
            seconds = time.perf_counter() - started
        rate = outcome.computed / seconds * 60
        base = base or rate
        print(f"| {workers} | {outcome.computed} | {seconds:.1f} | {rate:.1f} | {rate / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
