"""The whole run loop pinned: prior, protected start, projection, racing, the bound's choice and the confirmation.

Each scenario runs a real searcher on the planted problem with per-item results and a confirmation split, and
records everything the loop decides: every evaluation in the order the evaluator ran it (schedule, split,
items), what was recorded, what was spent and what ships. ``loop_golden.json`` holds that trace as the loop
produced it before it was rewritten as objects (issue 31, slice 4), so a change of structure that changes a
single proposal, evaluation or choice fails here. Regenerate only for an intended change of behaviour:
``python -m tests.engine.test_loop_golden --write``.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from colasearch.objectives import make_objective
from colasearch.results import EvalResult
from colasearch.engine import InProcessExecutor, run_search
from colasearch.engine.testing import PerItemPlantedEvaluator
from colasearch.searchers.base import SearchSpace, make_searcher
from colasearch.tasks.splits import Split
from colasearch.testing import make_tiny_model

GOLDEN = Path(__file__).with_name("loop_golden.json")

#: (searcher, seed, window, budget, target): searchers that propose alike and unalike, one and several at once.
SCENARIOS = {
    "evolution-w1": ("evolution", 0, 1, 12, 1.25),
    "mcts-w3": ("mcts", 1, 3, 12, 1.25),
    "random-w2": ("random", 2, 2, 10, 1.4),
    "optuna-w1": ("optuna", 3, 1, 10, 1.25),
}


class TracedEvaluator(PerItemPlantedEvaluator):
    """The planted problem on 64 search items and 64 confirmation items of its own difficulty; it notes every
    evaluation it runs."""

    def __init__(self, model, weights):
        super().__init__(model, weights, items=64)
        self.splits = Split(search=[None] * 64, heldout=[None], confirm=[None] * 64)
        generator = random.Random(23)
        self.confirm_difficulties = [generator.uniform(0.3, 1.0) for _ in range(64)]
        self.calls: list[list] = []

    def evaluate(self, schedule, split="search", items=None):
        self.calls.append([schedule.key if schedule is not None else "full", split, items])
        result = super().evaluate(schedule, "search", items)
        if split != "confirm":
            return result
        quality = self.quality(schedule)
        values = [float(quality >= difficulty) for difficulty in self.confirm_difficulties[:items]]
        return EvalResult(result.schedule_key, self.task, split, {"acc": sum(values) / len(values)},
                          result.ideal_speedup, extra={"items": len(values), "per_item": {"acc": values}})


def _items(result: EvalResult):
    return result.items


def _estimated(result: EvalResult) -> bool:
    return result.estimated


def trace(name: str) -> dict:
    searcher_name, seed, window, budget, target = SCENARIOS[name]
    model = make_tiny_model("llama", num_layers=8)
    space = SearchSpace.for_model(model, target_speedup=target)
    evaluator = TracedEvaluator(model, PerItemPlantedEvaluator.random_weights(8, seed=seed + 5))
    objective = make_objective("constrained", metric="acc", target_speedup=space.target)
    searcher = make_searcher(searcher_name, space, objective, seed=seed)
    outcome = run_search(searcher, InProcessExecutor(evaluator), objective, budget=budget, evaluator=evaluator,
                         window=window)
    key = (lambda schedule: schedule.key if schedule is not None else None)
    return {
        "calls": evaluator.calls,
        "records": [[schedule.key, _items(result), _estimated(result), result.quality["acc"]]
                    for schedule, result in outcome.records],
        "start": key(outcome.start), "best": key(outcome.best), "best_value": outcome.best_value,
        "highest": key(outcome.highest), "choice_z": outcome.choice_z,
        "confirmations": [check.to_dict() for check in outcome.confirmations], "confirm_items": outcome.confirm_items,
        "items_spent": outcome.items_spent, "prior_items": outcome.prior_items, "computed": outcome.computed,
        "reused": outcome.reused, "stopped": sorted(outcome.stopped),
    }


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_loop_decides_as_it_did_before_it_was_rewritten(name):
    expected = json.loads(GOLDEN.read_text())[name]
    assert trace(name) == expected


def test_the_scenarios_reach_every_part_of_the_loop():
    """The pin is only worth something where the loop raced, chose against the start, and confirmed."""
    golden = json.loads(GOLDEN.read_text())
    assert any(entry["stopped"] for entry in golden.values())
    assert any(entry["confirmations"] for entry in golden.values())
    assert any(entry["highest"] is not None for entry in golden.values())
    assert any(check["holds"] for entry in golden.values() for check in entry["confirmations"])


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.write_text(json.dumps({name: trace(name) for name in sorted(SCENARIOS)}, indent=1) + "\n")
