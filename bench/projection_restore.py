"""What projection's restore step does to the candidates a search evaluates, in a sub-block space.

A proposal faster than the target gets dropped units back while the target still holds. This compares
three rules on the same proposals: the library's (a sub-block only beside its running sibling, a wholly
dropped layer only whole), the rule before it (any dropped unit, most important per cost first), and no
restore at all. The proposals are the default searcher's offspring: evolution's constant-cost mutations
of the whole-layer one-shot start (Block Influence's schedule). Each distinct projected schedule is
scored on the search split; the paired differences are over offspring, with their standard errors.

    python bench/projection_restore.py --data ../shared/data --task arc_easy --target 1.25 --offspring 20
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch
from benchdata import add_data_option, data_dir

TASKS = {"arc_easy": "arc_easy.jsonl", "piqa": "piqa.jsonl", "hellaswag": "hellaswag.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_option(parser)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="arc_easy", choices=sorted(TASKS))
    parser.add_argument("--target", type=float, default=1.25)
    parser.add_argument("--search-size", type=int, default=256)
    parser.add_argument("--offspring", type=int, default=20, help="offspring whose three projections differ")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    data = data_dir(parser, args, TASKS[args.task])

    from colasearch.priors import compute_prior
    from colasearch.engine.session import RunContext
    from colasearch.searchers.base import SearchSpace
    from colasearch.searchers.evolution import EvolutionSearcher

    class AnyUnitBack(SearchSpace):
        """The rule before: any dropped unit may come back, a lone attention block in a skipped span too."""

        def _restorable_units(self, chain):
            return self._dropped_units(chain)

    class NothingBack(SearchSpace):
        def _restorable_units(self, chain):
            return []

    context = RunContext.load(args.model, f"jsonl:{data / TASKS[args.task]}", args.search_size, 1, 0)
    evaluator, metric = context.fresh_evaluator(), context.metric
    rules = {name: kind.for_model(context.model, target_speedup=args.target, sub_blocks=True)
             for name, kind in (("sibling", SearchSpace), ("any unit", AnyUnitBack), ("none", NothingBack))}
    space = rules["sibling"]
    prior = compute_prior(evaluator, space)
    start = space.one_shot_starts(prior)[0]
    mutator = EvolutionSearcher(space, None, seed=args.seed)
    mutator.prior = prior

    scores: dict[str, float] = {}
    rows, seen, tries = [], set(), 0
    print(f"| offspring | rule | {metric} (search) | ideal speedup | chain |\n|---|---|---|---|---|", flush=True)
    while len(rows) < args.offspring and tries < 50 * args.offspring:
        tries += 1
        child = mutator._mutate(start)
        if child in seen:
            continue
        seen.add(child)
        proposal = space.chain_skipping(child)
        projected = {name: rule.schedule(rule.project(proposal, prior)) for name, rule in rules.items()}
        if len({schedule.key for schedule in projected.values()}) == 1:
            continue  # every rule gives the same schedule: nothing to compare
        row = {}
        for name, schedule in projected.items():
            if schedule.key not in scores:
                scores[schedule.key] = evaluator.evaluate(schedule, "search").quality[metric]
            row[name] = scores[schedule.key]
            print(f"| {len(rows) + 1} | {name} | {row[name]:.4f} | {space.speedup(schedule):.3f}x | "
                  f"{schedule.chain} |", flush=True)
        rows.append(row)

    print(f"\n{args.task} {args.target:g}x, {len(rows)} offspring whose projections differ, "
          f"{args.search_size} search items\n")
    print("| rule | mean over offspring |\n|---|---|")
    for name in rules:
        print(f"| {name} | {statistics.mean(row[name] for row in rows):.4f} |")
    print("\n| comparison | mean difference ± SE over offspring | in SE | better / worse |\n|---|---|---|---|")
    for first, second in (("sibling", "any unit"), ("none", "any unit"), ("sibling", "none")):
        differences = [row[first] - row[second] for row in rows]
        mean = statistics.mean(differences)
        error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else 0.0
        ratio = f"{mean / error:+.1f}" if error else "-"
        print(f"| {first} minus {second} | {mean:+.4f} ± {error:.4f} | {ratio} | "
              f"{sum(d > 0 for d in differences)} / {sum(d < 0 for d in differences)} |")


if __name__ == "__main__":
    main()
