"""Every searcher and baseline at the same evaluation budget on the embedded model, per task.

Prints a markdown table: held-out quality of each searcher's best schedule (chosen on the search
split), the full model's held-out quality, ideal speedup, evaluations used and wall time.

    python bench/searchers.py --data DIR            # ARC-Easy, PIQA, HellaSwag; budget 40; target 1.25
    python bench/searchers.py --budget 12 --search-size 32 --heldout-size 100 --tasks arc_easy
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from benchdata import add_data_option, data_dir

TASKS = {"arc_easy": "arc_easy.jsonl", "piqa": "piqa.jsonl", "hellaswag": "hellaswag.jsonl"}
SEARCHERS = ("mcts", "optuna", "rl", "frontier", "unified", "greedy", "random")
BASELINES = {"unified", "greedy", "random"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--searchers", default=",".join(SEARCHERS))
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--target-speedup", type=float, default=1.25)
    parser.add_argument("--search-size", type=int, default=64)
    parser.add_argument("--heldout-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--search-metric", default="primary",
                        help="what the searchers maximize on the search split: primary, smooth or a metric name")
    add_data_option(parser)
    args = parser.parse_args()
    data = data_dir(parser, args, *(TASKS[name] for name in args.tasks.split(",") if name in TASKS))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)

    from colasearch.search.session import RunContext, search_with

    lines = ["| task | searcher | held-out acc | search acc | ideal speedup | evaluations | wall s | chain |",
             "|---|---|---|---|---|---|---|---|"]
    for task_name in args.tasks.split(","):
        spec = f"jsonl:{data / TASKS[task_name]}"
        context = RunContext.load(args.model, spec, args.search_size, args.heldout_size, 0,
                                  search_metric=args.search_metric)
        metric = context.metric
        started = time.perf_counter()
        full_heldout = context.evaluator.evaluate(None, "heldout").quality[metric]
        full_search = context.evaluator.evaluate(None, "search").quality[metric]
        lines.append(f"| {task_name} | full model | {full_heldout:.4f} | {full_search:.4f} | 1.000x | - | "
                     f"{time.perf_counter() - started:.0f} | all |")
        best = {}
        for name in args.searchers.split(","):
            evaluator = context.fresh_evaluator()  # no cache carried over from another searcher
            started = time.perf_counter()
            outcome, _ = search_with(context, name, args.budget, args.target_speedup, args.seed, evaluator=evaluator)
            seconds = time.perf_counter() - started
            if outcome.best is None or outcome.best_value == float("-inf"):
                lines.append(f"| {task_name} | {name} | - | - | - | {outcome.evaluations} | {seconds:.0f} | none feasible |")
                continue
            heldout = evaluator.evaluate(outcome.best, "heldout").quality[metric]
            best[name] = heldout
            lines.append(f"| {task_name} | {name} | {heldout:.4f} | {outcome.best_result.quality[metric]:.4f} | "
                         f"{outcome.best_result.ideal_speedup:.3f}x | {outcome.evaluations} | {seconds:.0f} | "
                         f"`{outcome.best.chain}` |")
            print(lines[-1], flush=True)
        searched = {name: value for name, value in best.items() if name not in BASELINES}
        baselines = {name: value for name, value in best.items() if name in BASELINES}
        if searched and baselines:
            top, top_base = max(searched, key=searched.get), max(baselines, key=baselines.get)
            verdict = "matches or beats" if searched[top] >= baselines[top_base] else "LOSES TO"
            lines.append(f"| {task_name} | **{top} {verdict} {top_base}** | {searched[top]:.4f} vs "
                         f"{baselines[top_base]:.4f} | | | | | |")
    print(f"\nmodel {args.model}, target {args.target_speedup}x, budget {args.budget} evaluations, "
          f"search/held-out {args.search_size}/{args.heldout_size} items, seed {args.seed}, "
          f"search metric {args.search_metric}, "
          f"{torch.get_num_threads()} threads\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
