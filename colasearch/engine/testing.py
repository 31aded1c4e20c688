"""A planted problem for testing searchers: a synthetic quality whose best schedule is known.

Quality is 1 minus the planted weights of the skipped units (minus a penalty per repeated or
out-of-order entry), so the optimum at a speed target can be found by brute force and compared
with what a searcher returns. The evaluator side mimics ``colasearch.evaluator.Evaluator``.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from typing import ClassVar

import torch

from colasearch.cost import CostModel
from colasearch.evaluator.base import BaseEvaluator
from colasearch.objectives.base import BaseObjective
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.target import Target


class PlantedObjective(BaseObjective):
    """Maximize ``acc`` subject to ideal speedup >= target (what ``make_objective("constrained")`` does)."""

    name: ClassVar[str] = "planted-constrained"

    def __init__(self, target_speedup: Target | float, metric: str = "acc"):
        self.target = Target.of(target_speedup)
        self.metric = metric

    @property
    def directions(self):
        return ("maximize",)

    def values(self, result: EvalResult):
        return (result.quality[self.metric],)

    def feasible(self, result: EvalResult) -> bool:
        return self.target.reaches(result.ideal_speedup)


class PlantedEvaluator(BaseEvaluator):
    """Scores schedules by planted unit weights; counts every evaluation it runs. Whole splits only: no fidelity
    levels, no per-item values, no confirmation split (``BaseEvaluator``'s defaults)."""

    def __init__(self, model, weights: dict, task: str = "planted", delay: float = 0.0, fail_after: int | None = None):
        self.model = model
        self.weights = dict(weights)
        self.task = task
        self.delay = delay
        self.fail_after = fail_after
        self.cost_model = CostModel.from_model(model)
        self.evaluated: list[str] = []

    @staticmethod
    def random_weights(num_layers: int, seed: int, sub_blocks: bool = False) -> dict:
        generator = random.Random(seed)
        runs = ("attn", "mlp") if sub_blocks else ("all",)
        return {(layer, run): round(generator.uniform(0.01, 0.2), 4) for layer in range(num_layers) for run in runs}

    def quality(self, schedule: Schedule | None) -> float:
        if schedule is None:
            return 1.0
        attention = {entry.layer for entry in schedule.layers if entry.runs_attention}
        mlp = {entry.layer for entry in schedule.layers if entry.runs_mlp}
        lost = 0.0
        for (layer, run), weight in self.weights.items():
            kept = {"all": layer in attention and layer in mlp, "attn": layer in attention, "mlp": layer in mlp}[run]
            lost += 0.0 if kept else weight
        layers = [entry.layer for entry in schedule.layers]
        disorder = sum(1 for a, b in zip(layers, layers[1:]) if b <= a)
        return round(1.0 - lost - 0.3 * disorder, 6)

    def evaluate(self, schedule: Schedule | None, split: str = "search") -> EvalResult:
        if self.fail_after is not None and len(self.evaluated) >= self.fail_after:
            raise RuntimeError("planted evaluator: simulated crash")
        if self.delay:
            time.sleep(self.delay)
        key = schedule.key if schedule is not None else "full"
        self.evaluated.append(key)
        shift = 0.0 if split == "search" else -0.01
        return EvalResult(schedule_key=key, task=self.task, split=split, quality={"acc": self.quality(schedule) + shift},
                          ideal_speedup=self.cost_model.ideal_speedup(schedule))

    def evaluate_many(self, schedules, split: str = "search") -> list[EvalResult]:
        return [self.evaluate(schedule, split) for schedule in schedules]

    def calibration_batch(self, max_items: int = 32):
        generator = torch.Generator().manual_seed(0)
        vocab = self.model.get_input_embeddings().weight.shape[0]
        input_ids = torch.randint(3, vocab, (min(max_items, 4), 12), generator=generator)
        return input_ids, torch.ones_like(input_ids)

    @property
    def stats(self) -> dict:
        return {"evaluations": len(self.evaluated)}

    def best_skip_set(self, space) -> tuple[float, frozenset]:
        """Brute force over skip sets of the space's units: the best planted quality meeting the target."""
        best = (-math.inf, frozenset())
        units = list(space.units)
        for size in range(len(units) + 1):
            for skipped in itertools.combinations(units, size):
                chain = space.chain_skipping(skipped)
                if chain and space.length_ok(chain) and space.meets_target(chain):
                    value = self.quality(space.schedule(chain))
                    if value > best[0] + 1e-12:
                        best = (value, frozenset(skipped))
        return best


class PerItemPlantedEvaluator(PlantedEvaluator):
    """The planted quality seen through ``items`` items, as the real evaluator reports it for racing: item
    ``i`` is right when the schedule's planted quality reaches the item's fixed difficulty, so a worse
    schedule loses items and a subset of the split is its first items (fidelity levels 4, 8, ... items)."""

    per_item = True

    def __init__(self, model, weights: dict, items: int = 32, **options):
        super().__init__(model, weights, **options)
        generator = random.Random(7)
        self.difficulties = [generator.uniform(0.3, 1.0) for _ in range(items)]
        levels, size = [], 4
        while size < items:
            levels.append(size)
            size *= 2
        self.levels = {"search": (*levels, items)}

    def evaluate(self, schedule: Schedule | None, split: str = "search", items: int | None = None) -> EvalResult:
        result = super().evaluate(schedule, split)
        count = items or len(self.difficulties)
        quality = self.quality(schedule)
        values = [float(quality >= difficulty) for difficulty in self.difficulties[:count]]
        return EvalResult(schedule_key=result.schedule_key, task=self.task, split=split,
                          quality={"acc": sum(values) / count}, ideal_speedup=result.ideal_speedup,
                          items=count, per_item={"acc": values})

    def evaluate_many(self, schedules, split: str = "search", items=None) -> list[EvalResult]:
        items = items or [None] * len(schedules)
        return [self.evaluate(schedule, split, count) for schedule, count in zip(schedules, items)]
