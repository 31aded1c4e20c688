"""How a run's confirmation would have decided on more confirmation items.

Reads a ``bench/searchers.py --results`` file, takes the searcher's cell (its contenders, as the run's
confirmation table lists them) and the baseline's schedule (the run's start), and scores both on the first
``--confirm-size`` confirmation items: the items after the held-out ones in the split's hash order, whose
first ones are those the run confirmed on. Prints the paired lead on nested prefixes of those items, with
its standard error, so that one sees how far a confirmation on few items moves as the items grow. The lead
and its error are the run loop's own (``racing.paired_difference``): oriented by the metric's direction, with
the pseudo-disagreements it adds where both schedules score every item 0 or 1. ``--metric`` replays another
of the task's metrics than its primary one (e.g. the accuracy of a run that searched and confirmed on a dense
metric). Each lead is judged as the run loop judges it (``confirmation.holm``: Holm's one-sided test at a
family-wise 5% over the contenders), and the table says the standard errors it needed and whether it holds.

    python bench/confirmation_replay.py --data ../shared/data --task hellaswag --results hella.jsonl \\
        --search-size 128 --heldout-size 500 --confirm-size 512

``--recorded LEAD:SE:ITEMS`` (once per contender of one run, in any order) judges leads recorded in
BENCHMARKS.md by today's rule without a model, a results file or any item:

    python bench/confirmation_replay.py --recorded +0.008:0.024:256
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import torch
from benchdata import add_data_option, task_spec
from paired_heldout import parse_chain
from searchers import TASKS as SEARCHER_TASKS

#: The multiple-choice tasks of bench/searchers.py, whose recorded confirmations this replays.
TASKS = {name: spec for name, spec in SEARCHER_TASKS.items() if spec.startswith("jsonl:")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_option(parser)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="hellaswag", choices=sorted(TASKS))
    parser.add_argument("--results", help="the bench/searchers.py results file of the run (required unless --recorded)")
    parser.add_argument("--target", type=float, default=1.25)
    parser.add_argument("--searcher", default="evolution")
    parser.add_argument("--baseline", default="greedy", help="the run's start: the baseline whose schedule it was")
    parser.add_argument("--search-size", type=int, default=128)
    parser.add_argument("--heldout-size", type=int, default=500)
    parser.add_argument("--confirm-size", type=int, default=512)
    parser.add_argument("--step", type=int, default=128, help="report the lead every this many items")
    parser.add_argument("--metric", default=None,
                        help="the metric to replay, as --search-metric takes it (default: the task's primary one)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--recorded", action="append", metavar="LEAD:SE:ITEMS",
                        help="judge a recorded confirmation lead by today's rule (repeat per contender); no model")
    args = parser.parse_args()
    if args.recorded:
        judge_recorded(parser, args.recorded)
        return
    if not args.results:
        parser.error("--results is required (or --recorded to judge recorded leads)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    spec = task_spec(parser, args, TASKS[args.task])

    from colasearch.engine.confirmation import Confirmation, holm
    from colasearch.engine.racing import paired_difference
    from colasearch.engine.session import RunContext

    try:
        with open(args.results, encoding="utf-8") as handle:
            cells = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as error:  # a missing or torn file is a usage error, not a traceback
        parser.error(f"--results {args.results}: {error}")
    start = next((cell for cell in cells if cell["name"] == args.baseline and cell["target"] == args.target), None)
    if start is None:
        parser.error(f"{args.results} has no {args.baseline} cell at {args.target:g}x")
    searched = [cell for cell in cells if cell["name"] == args.searcher and cell["target"] == args.target
                and cell.get("confirmation")]
    if not searched:
        parser.error(f"{args.results} has no {args.searcher} cell at {args.target:g}x with a confirmation")
    context = RunContext.load(args.model, spec, args.search_size, args.heldout_size, 0,
                              search_metric=args.metric, confirm_size=args.confirm_size)
    evaluator, metric = context.evaluator, context.search_metric  # --metric resolved; primary when unset
    sign = context.task.metric_sign(metric)
    base = evaluator.evaluate(parse_chain(start["chain"]), "confirm")
    chains = [check["schedule"] for check in searched[-1]["confirmation"]]
    results = {chain: evaluator.evaluate(parse_chain(chain), "confirm") for chain in chains}
    items = min(len(result.per_item[metric]) for result in results.values())
    print(f"| contender | confirmation items | lead over the start in {metric} ± SE | SE needed | holds |\n"
          "|---|---|---|---|---|")
    for count in sorted({*range(args.step, items, args.step), items}):
        checks = holm([Confirmation(chain, chain, *paired_difference(first_items(results[chain], metric, count), base,
                                                                      metric, sign)) for chain in chains])
        for check in checks:
            print(f"| {check.chain} | {count} | {check.mean:+.4f} ± {check.error:.4f} | {check.needed:.2f} | "
                  f"{'yes' if check.holds else 'no'} |", flush=True)


def judge_recorded(parser, recorded: list[str]) -> None:
    """Print each recorded ``LEAD:SE:ITEMS`` with the standard errors today's rule needs and whether it holds."""
    from colasearch.engine.confirmation import Confirmation, holm

    try:
        leads = [tuple(float(part) for part in text.split(":")) for text in recorded]
        checks = [Confirmation(text, text, mean, error, int(items))
                  for text, (mean, error, items) in zip(recorded, leads)]
    except ValueError:
        parser.error("--recorded takes LEAD:SE:ITEMS, e.g. +0.008:0.024:256")
    print("| recorded lead ± SE on items | in SE | SE needed | holds |\n|---|---|---|---|")
    for check in holm(checks):
        print(f"| {check.mean:+.3f} ± {check.error:.3f} on {check.items} | {check.t:+.2f} | {check.needed:.2f} | "
              f"{'yes' if check.holds else 'no'} |")


def first_items(result, metric: str, count: int):
    """``result`` as if it had been scored on its first ``count`` items only (the start's are cut to match)."""
    per_item = {metric: result.per_item[metric][:count]}
    return dataclasses.replace(result, per_item=per_item)


if __name__ == "__main__":
    main()
