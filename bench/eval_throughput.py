"""Candidate evaluations per minute: the optimized Evaluator against a plain per-choice, no-cache evaluator.

Schedules are drawn the way a tree search proposes them: each is one edit (drop an entry, drop a
sub-block, repeat a layer, swap two neighbours) of an earlier one, so they share leading layers.
The optimized evaluator scores all of them in proposal order, one at a time as a search would; the
plain one scores a spread-out subset (it is slow), interleaved so both run under the same load, and
both must agree on every metric within 1e-4.

    python bench/eval_throughput.py --data DIR --items 64 --schedules 50 --baseline-schedules 3
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch
from benchdata import add_data_option, data_dir


def tree_search_schedules(num_layers: int, count: int, seed: int = 0):
    from colasearch.schedule import LayerEntry, Schedule

    rng = random.Random(seed)
    full = tuple(LayerEntry(layer=index) for index in range(num_layers))
    pool, seen, proposals = [full], {full}, []
    while len(proposals) < count:
        parent = list(rng.choice(pool))
        position = rng.randrange(1, len(parent) - 1)  # first and last entries stay, as searchers keep them
        edit = rng.choice(("drop", "drop", "sub", "repeat", "swap"))
        if edit == "drop" and len(parent) > 4:
            del parent[position]
        elif edit == "sub" and parent[position].run == "all":
            parent[position] = LayerEntry(layer=parent[position].layer, run=rng.choice(("attn", "mlp")))
        elif edit == "repeat":
            parent.insert(position, parent[position])
        elif edit == "swap":
            parent[position], parent[position + 1] = parent[position + 1], parent[position]
        child = tuple(parent)
        if child in seen:
            continue
        seen.add(child)
        pool.append(child)
        proposals.append(Schedule.from_layers(child))
    return proposals


def plain_quality(model, task, items, packed, schedule):
    from colasearch.evaluator import reference_scores

    return task.metrics(items, packed, reference_scores(model, schedule, packed))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--schedules", type=int, default=50)
    parser.add_argument("--baseline-schedules", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    add_data_option(parser)
    args = parser.parse_args(argv)
    data = data_dir(parser, args, "arc_easy.jsonl")
    torch.set_num_threads(args.threads)

    from colasearch import load_model
    from colasearch.evaluator import Evaluator
    from colasearch.tasks import load_task

    model, tokenizer = load_model("smollm2-135m")
    task = load_task(f"jsonl:{data / 'arc_easy.jsonl'}")
    evaluator = Evaluator.from_options(model, tokenizer, task, search_size=args.items, heldout_size=1, seed=args.seed)
    schedules = tree_search_schedules(len(model.model.layers), args.schedules, args.seed)
    items, packed = evaluator.split_items("search"), evaluator.packed("search")

    # The plain evaluator runs on evenly spread schedules of the same list, each right after the
    # optimized evaluator reached it, so both see the same machine load; each side's clock runs
    # only over its own evaluations.
    picked = [round(k * (len(schedules) - 1) / max(1, args.baseline_schedules - 1)) for k in range(args.baseline_schedules)]
    plain, fast = {}, []
    plain_seconds = fast_seconds = 0.0
    for number, schedule in enumerate(schedules, start=1):
        start = time.perf_counter()
        fast.append(evaluator.evaluate(schedule).quality)
        fast_seconds += time.perf_counter() - start
        if number - 1 in picked:
            start = time.perf_counter()
            plain[number - 1] = plain_quality(model, task, items, packed, schedule)
            plain_seconds += time.perf_counter() - start
            print(f"plain: schedule {number - 1} {plain[number - 1]} ({plain_seconds:.0f}s so far)", flush=True)
        if number % 5 == 0:
            print(f"optimized: {number} schedules in {fast_seconds:.0f}s ({60 * number / fast_seconds:.2f}/min)", flush=True)

    worst = max(abs(plain[index][metric] - fast[index][metric]) for index in picked for metric in plain[index])
    fast_rate = 60 * len(schedules) / fast_seconds
    plain_rate = 60 * len(picked) / plain_seconds
    stats = evaluator.stats
    reused = stats["entries_reused"] / max(1, stats["entries_reused"] + stats["entries_run"])
    print(f"ARC-Easy, {args.items} items, SmolLM2-135M-Instruct, {torch.get_num_threads()} threads")
    print("| evaluator | schedules | seconds | evaluations / min |")
    print("|---|---:|---:|---:|")
    print(f"| plain per-choice, no cache | {len(picked)} | {plain_seconds:.1f} | {plain_rate:.2f} |")
    print(f"| optimized (packed, prefix cache) | {len(schedules)} | {fast_seconds:.1f} | {fast_rate:.2f} |")
    print(f"speedup: {fast_rate / plain_rate:.2f}x; largest metric difference on the shared schedules: {worst:.2e}")
    print(f"prefix cache: {stats['prefix_cache_hits']} hits, {stats['prefix_cache_misses']} misses, "
          f"{reused:.0%} of chain entries reused; mean acc {sum(q['acc'] for q in fast) / len(fast):.3f}")
    ok = worst <= 1e-4 and fast_rate / plain_rate >= 5
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
