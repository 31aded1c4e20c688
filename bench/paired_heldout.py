"""Two schedules on the same held-out items: each one's value and their paired difference.

Two runs of ``bench/searchers.py`` that differ in a setting (say ``--search-metric``) each report their
choice against the baseline, but not against each other. This scores both choices on the held-out split of
the same task and split settings, item by item, and prints the paired mean difference (first minus second,
oriented so that higher is better) with its bootstrap standard error, as ``bench/searchers.py`` does.

    python bench/paired_heldout.py --data ../shared/data --task arc_easy --search-size 256 --heldout-size 1000 \\
        --first "0-4 5m 6 7m 8m 9-14 16a 17-19" --second "0-11 18-24 27-29"

A chain is as reports print it: ``3`` a whole layer, ``3a`` its attention only, ``3m`` its MLP only, ``0-4``
layers 0 to 4.
"""

from __future__ import annotations

import argparse
import os

import torch
from benchdata import add_data_option, task_spec
from searchers import TASKS, paired


def parse_chain(chain: str):
    """A schedule from a printed chain, ranges of whole layers included."""
    from colasearch.schedule import Schedule

    runs, layers = {"a": "attn", "m": "mlp"}, []
    for token in chain.split():
        if "-" in token:
            first, last = (int(end) for end in token.split("-"))
            layers += [{"layer": index, "run": "all"} for index in range(first, last + 1)]
        else:
            layers.append({"layer": int(token.rstrip("am")), "run": runs.get(token[-1], "all")})
    return Schedule.from_layers(layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_option(parser)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="arc_easy", choices=sorted(TASKS))
    parser.add_argument("--first", required=True, help="the first schedule's chain")
    parser.add_argument("--second", required=True, help="the second schedule's chain")
    parser.add_argument("--search-size", type=int, default=128)
    parser.add_argument("--heldout-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    spec = task_spec(parser, args, TASKS[args.task])

    from colasearch.engine.session import RunContext

    context = RunContext.load(args.model, spec, args.search_size, args.heldout_size, 0,
                              confirm_size=0)
    metric = context.metric
    sign = context.task.metric_sign(metric)
    values = []
    for chain in (args.first, args.second):
        result = context.evaluator.evaluate(parse_chain(chain), "heldout")
        values.append(result.per_item[metric])
        print(f"| {chain} | {metric} {result.quality[metric]:.4f} | ideal speedup {result.ideal_speedup:.3f}x |",
              flush=True)
    mean, error = paired(values[0], values[1], sign)
    print(f"first minus second, held-out {metric}, paired over {len(values[0])} items: {mean:+.4f} ± {error:.4f} "
          f"({mean / error if error else 0.0:+.1f} SE)")


if __name__ == "__main__":
    main()
