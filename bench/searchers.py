"""Searchers against one-shot pruning at equal compute, judged on held-out items with paired standard errors.

For every task and speed target: each searcher and baseline runs on a fresh evaluator; its compute is
counted in full-split evaluations (item-evaluations / search items), the prior's and the baselines'
calibration passes included. The chosen schedule is scored on the held-out split, item by item, and
the best searcher is compared with the best baseline on the same held-out items: the paired mean
difference and its standard error from a bootstrap over items.

    python bench/searchers.py --data ../shared/data                      # all tasks, 1.1/1.25/1.5x
    python bench/searchers.py --data ../shared/data --tasks arc_easy --targets 1.25 --budget 20
    python bench/searchers.py --data ../shared/data --results runs.jsonl   # resumable, cell by cell

With ``--results FILE`` every finished cell (task, target, schedule) is appended to FILE with its
held-out values item by item, and a rerun with the same settings reads those cells back instead of
recomputing them, so the grid (hours on a CPU) can be built over several runs and survives a kill.

The searchers are chosen on their search-split results only; the best baseline is the best on
held-out items (the comparison is conservative towards the baselines). The verdict names the
default searcher of ``colasearch run`` as well as the best one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import torch
from benchdata import add_data_option, data_dir

from colasearch.searchers.base import SEARCHERS

TASKS = {"arc_easy": "jsonl:arc_easy.jsonl", "piqa": "jsonl:piqa.jsonl", "hellaswag": "jsonl:hellaswag.jsonl",
         "wikitext2": "text:wikitext2_test_raw.txt"}
BOOTSTRAP = 2000


def paired(first: list[float], second: list[float], sign: float, seed: int = 0) -> tuple[float, float]:
    """Mean of sign * (first - second) and its bootstrap standard error over items."""
    differences = [sign * (a - b) for a, b in zip(first, second)]
    count = len(differences)
    mean = sum(differences) / count
    generator = random.Random(seed)
    means = []
    for _ in range(BOOTSTRAP):
        sample = [differences[generator.randrange(count)] for _ in range(count)]
        means.append(sum(sample) / count)
    centre = sum(means) / len(means)
    return mean, (sum((value - centre) ** 2 for value in means) / (len(means) - 1)) ** 0.5


#: Settings that change what a searcher finds but not the full model or a one-shot baseline: their cells are
#: shared between runs that differ only in these. The seed is the searcher's (the split's is fixed at 0 here).
SEARCH_ONLY_SETTINGS = ("budget", "search_metric", "no_racing", "sub_blocks", "confirm_size", "one_candidate_bound",
                        "seed")


def _in_errors(mean: float, error: float) -> str:
    if error:
        return f"{mean / error:+.1f}"
    return "same schedule" if mean == 0 else "no spread"


class ResultCells:
    """Finished cells, appended one JSON line each; a torn last line (a killed run) is ignored on read.

    The full model's and the baselines' cells (``shared=True``) are keyed without the search-only settings,
    so a run with another search metric reuses them instead of recomputing an hour of held-out items."""

    def __init__(self, path: str | None, settings: dict):
        self.path, self.settings, self.cells = path, settings, {}
        self.shared_settings = {key: value for key, value in settings.items() if key not in SEARCH_ONLY_SETTINGS}
        if path and os.path.exists(path):
            with open(path, "rb+") as handle:
                # A kill mid-line leaves no newline: end that line, or the next cell would be glued onto it.
                if handle.seek(0, os.SEEK_END) > 0:
                    handle.seek(-1, os.SEEK_END)
                    if handle.read(1) != b"\n":
                        handle.write(b"\n")
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        cell = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    stored = cell.get("settings")
                    if stored == settings or (cell.get("shared") and self._shared(stored) == self.shared_settings):
                        self.cells[(cell["task"], cell["target"], cell["name"])] = cell

    @staticmethod
    def _shared(stored: dict | None) -> dict | None:
        """A stored cell's settings without the search-only ones, which cells written earlier may still carry."""
        return None if stored is None else {key: value for key, value in stored.items()
                                            if key not in SEARCH_ONLY_SETTINGS}

    def get(self, task: str, target: float | None, name: str) -> dict | None:
        return self.cells.get((task, target, name))

    def put(self, task: str, target: float | None, name: str, shared: bool = False, **values) -> dict:
        cell = {"settings": self.shared_settings if shared else self.settings, "shared": shared, "task": task,
                "target": target, "name": name, **values}
        self.cells[(task, target, name)] = cell
        if self.path:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(cell) + "\n")
        return cell


def _highest(outcome, evaluator, metric: str, item_metric: str) -> dict | None:
    """The highest search value the final choice passed over, scored on held-out items."""
    if outcome.highest is None:
        return None
    searched = next(result for schedule, result in outcome.records if schedule.key == outcome.highest.key
                    and not result.estimated)
    result = evaluator.evaluate(outcome.highest, "heldout")
    return {"schedule": outcome.highest.key, "chain": outcome.highest.chain, "heldout": result.quality[metric],
            "search": searched.quality[metric], "per_item": result.per_item[item_metric]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_option(parser)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--targets", default="1.1,1.25,1.5")
    parser.add_argument("--searchers", default=",".join(SEARCHERS.builtin_names()),
                        help="comma-separated searchers and baselines (default: every built-in one)")
    parser.add_argument("--budget", type=int, default=40, help="full-split evaluations' worth of items per searcher")
    parser.add_argument("--search-size", type=int, default=128)
    parser.add_argument("--heldout-size", type=int, default=500)
    parser.add_argument("--confirm-size", type=int,
                        help="items after the held-out ones on which the final choice's lead must hold "
                             "(default: 4 x --search-size, as colasearch run; 0: no confirmation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--search-metric", default="primary")
    parser.add_argument("--no-racing", action="store_true", help="score every candidate on the whole search split")
    parser.add_argument("--one-candidate-bound", action="store_true",
                        help="the final choice asks for a lead of one paired SE, as for a single candidate, instead "
                             "of the max-T bound over all of them (an ablation: the confirmation is then the only "
                             "guard against the luckiest of many)")
    parser.add_argument("--sub-blocks", action="store_true",
                        help="searchers may also skip attention or MLP sub-blocks alone (the baselines stay the "
                             "published whole-layer methods)")
    parser.add_argument("--prefix-cache-mb", type=int,
                        help="bound of the prefix cache that this benchmark's evaluators share (default: a quarter of the "
                             "free memory; set it when several benchmarks share a machine, since each takes its quarter "
                             "of what is free when it starts). Results are bit-identical whatever the bound")
    parser.add_argument("--results", help="JSON-lines file of finished cells: appended to, and read back on a rerun")
    parser.add_argument("--score-highest", action="store_true",
                        help="where the final choice kept another schedule than the highest search value, score that "
                             "one on held-out items too (one more held-out evaluation), to judge the choice")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    data = data_dir(parser, args, *(TASKS[name].partition(":")[2] for name in args.tasks.split(",")))

    from colasearch.engine.racing import RacingPolicy
    from colasearch.engine.session import CONFIRM_SIZE_PER_SEARCH_ITEM, DEFAULT_SEARCHER, RunContext, search_with
    from colasearch.searchers.base import searcher_class

    racing = RacingPolicy(enabled=not args.no_racing, multiplicity=not args.one_candidate_bound)
    names = args.searchers.split(",")
    lines = ["| task | target | schedule | held-out | search | ideal speedup | compute (evals) | candidates | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    every_metric = []
    confirmations = []

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    settings = {key: getattr(args, key) for key in ("model", "budget", "search_size", "heldout_size", "seed",
                                                     "search_metric", "no_racing")}
    if args.sub_blocks:
        settings["sub_blocks"] = True  # only when set, so cells written before the option still match
    confirm_size = CONFIRM_SIZE_PER_SEARCH_ITEM * args.search_size if args.confirm_size is None else args.confirm_size
    if args.one_candidate_bound:
        settings["one_candidate_bound"] = True
    if confirm_size:
        settings["confirm_size"] = confirm_size  # likewise: cells from before confirmation have none
    cells = ResultCells(args.results, settings)
    contexts: dict[str, RunContext] = {}
    cache_option = {} if args.prefix_cache_mb is None else {"prefix_cache_mb": args.prefix_cache_mb}

    def loaded(task_name: str) -> RunContext:
        """The task's model and evaluator, loaded only when a cell has to be computed."""
        if task_name not in contexts:
            kind, _, file = TASKS[task_name].partition(":")
            contexts[task_name] = RunContext.load(args.model, f"{kind}:{data / file}", args.search_size,
                                                  args.heldout_size, 0, search_metric=args.search_metric,
                                                  confirm_size=confirm_size, **cache_option)
        return contexts[task_name]

    for task_name in args.tasks.split(","):
        full = cells.get(task_name, None, "full model")
        if full is None:
            context = loaded(task_name)
            evaluator, metric = context.evaluator, context.metric
            full = cells.put(task_name, None, "full model", shared=True, metric=metric,
                             sign=context.task.metric_sign(metric),
                             heldout=evaluator.evaluate(None, "heldout").quality[metric],
                             search=evaluator.evaluate(None, "search").quality[metric])
        metric, sign = full["metric"], full["sign"]
        item_metric = "nll" if metric == "perplexity" else metric
        emit(f"| {task_name} | - | full model | {full['heldout']:.4f} | {full['search']:.4f} | 1.000x | - | - | - |")
        for target in (float(value) for value in args.targets.split(",")):
            heldout: dict[str, tuple[float, list[float]]] = {}
            search_quality: dict[str, float] = {}
            for name in names:
                cell = cells.get(task_name, target, name)
                if cell is None:
                    context = loaded(task_name)
                    evaluator = context.fresh_evaluator()  # no cache carried over from another searcher
                    started = time.perf_counter()
                    # One-shot baselines ignore the budget and the search metric; random samples with both.
                    one_shot = searcher_class(name).is_baseline and name != "random"
                    budget = 1 if one_shot else args.budget
                    outcome, _ = search_with(context, name, budget, target, args.seed, evaluator=evaluator,
                                             racing=racing, space_options=None if one_shot or not args.sub_blocks
                                             else {"sub_blocks": True})
                    found = outcome.best is not None and outcome.best_value != float("-inf")
                    result = evaluator.evaluate(outcome.best, "heldout") if found else None
                    cell = cells.put(
                        task_name, target, name, shared=one_shot, found=found, compute=outcome.full_equivalents,
                        candidates=outcome.evaluations, seconds=time.perf_counter() - started,
                        schedule=outcome.best.key if found else None, chain=outcome.best.chain if found else None,
                        heldout=result.quality[metric] if found else None,
                        per_item=result.per_item[item_metric] if found else None,
                        # Every metric's held-out mean, so a search on another metric can be checked on its own
                        # terms too: did it carry over to unseen items, and did it carry the primary metric?
                        heldout_metrics=result.quality if found else None,
                        search=outcome.best_result.quality[metric] if found else None,
                        speedup=outcome.best_result.ideal_speedup if found else None,
                        highest=_highest(outcome, evaluator, metric, item_metric) if args.score_highest else None,
                        confirmation=[check.to_dict() for check in outcome.confirmations])
                if not cell["found"]:
                    emit(f"| {task_name} | {target:g}x | {name} | - | - | - | {cell['compute']:.1f} | "
                         f"{cell['candidates']} | {cell['seconds']:.0f} |")
                    continue
                heldout[name] = (cell["heldout"], cell["per_item"])
                if cell.get("heldout_metrics"):
                    every_metric.append(f"| {task_name} | {target:g}x | {name} | " + ", ".join(
                        f"{key} {value:.4f}" for key, value in sorted(cell["heldout_metrics"].items())) + " |")
                search_quality[name] = cell["search"]
                emit(f"| {task_name} | {target:g}x | {name} | {cell['heldout']:.4f} | {cell['search']:.4f} | "
                     f"{cell['speedup']:.3f}x | {cell['compute']:.1f} | {cell['candidates']} | {cell['seconds']:.0f} |")
                if cell.get("highest"):
                    highest = cell["highest"]
                    mean, error = paired(highest["per_item"], cell["per_item"], sign)
                    emit(f"| {task_name} | {target:g}x | {name}, highest search value (not chosen) | "
                         f"{highest['heldout']:.4f} | {highest['search']:.4f} | - | - | - | - |")
                    verdicts.append(f"| {task_name} | {target:g}x | {name}: highest not chosen, minus chosen | - | "
                                    f"{highest['heldout']:.4f} vs {cell['heldout']:.4f} | {mean:+.4f} ± {error:.4f} | "
                                    f"{_in_errors(mean, error)} | - |")
                for check in cell.get("confirmation") or []:
                    confirmations.append(f"| {task_name} | {target:g}x | {name} | {check['schedule']} | "
                                         f"{check['lead']:+.4f} ± {check['standard_error']:.4f} on {check['items']} | "
                                         f"{'holds' if check['holds'] else 'does not hold'} |")
            searched = {name: value for name, value in heldout.items() if not searcher_class(name).is_baseline}
            baselines = {name: value for name, value in heldout.items() if searcher_class(name).is_baseline}
            if not searched or not baselines:
                continue
            base = max(baselines, key=lambda name: sign * baselines[name][0])
            # The best searcher is the one a user would pick: best on the search split, not on held-out items.
            best = max(searched, key=lambda n: sign * search_quality[n])
            for label, name in (("default", DEFAULT_SEARCHER), ("best", best)):
                if name not in searched:
                    continue
                mean, error = paired(searched[name][1], baselines[base][1], sign)
                ratio = searched[name][0] / full["heldout"] if sign > 0 else full["heldout"] / searched[name][0]
                verdicts.append(f"| {task_name} | {target:g}x | {label}: {name} | {base} | "
                                f"{searched[name][0]:.4f} vs {baselines[base][0]:.4f} | {mean:+.4f} ± {error:.4f} | "
                                f"{_in_errors(mean, error)} | {ratio:.3f} |")
    print(f"\nmodel {args.model}, budget {args.budget} full-split evaluations, search/held-out "
          f"{args.search_size}/{args.heldout_size} items, confirmation {confirm_size} items, seed {args.seed}, "
          f"search metric {args.search_metric}, bound {'one candidate' if args.one_candidate_bound else 'max-T'}, "
          f"racing {'off' if args.no_racing else 'on'}, sub-blocks {'on' if args.sub_blocks else 'off'}, "
          f"{torch.get_num_threads()} threads\n")
    print("\n".join(lines))
    print("\n| task | target | searcher | best baseline | held-out | paired difference ± SE (bootstrap) | "
          "difference / SE | share of full model |\n|---|---|---|---|---|---|---|---|")
    print("\n".join(verdicts))
    if confirmations:
        print("\n| task | target | searcher | contender (cleared the bound) | lead over the start on confirmation "
              "items ± SE | |\n|---|---|---|---|---|---|")
        print("\n".join(confirmations))
    if every_metric:
        print("\n| task | target | schedule | every held-out metric |\n|---|---|---|---|")
        print("\n".join(every_metric))


if __name__ == "__main__":
    main()
