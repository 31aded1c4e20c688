"""Baseline: importance pruning. Units are removed least-important first until the target is reached.

Scores: ShortGPT's Block Influence, angular distance (both measured once on the full model), or
FinerCut-style removal of the unit that moves the output least, recomputed after each removal.
"""

from __future__ import annotations

from colasearch.importance import SCORES, finercut_order, unit_scores
from colasearch.schedule import Schedule
from colasearch.searchers.base import ConstructedBaseline, SearcherError


class GreedySearcher(ConstructedBaseline):
    name = "greedy"

    def __init__(self, space, objective, seed: int = 0, budget: int | None = None, *, score: str = "block_influence",
                 calibration_items: int = 16, **options):
        super().__init__(space, objective, seed, budget, **options)
        if score not in SCORES:
            raise SearcherError(f"greedy: unknown score {score!r} (known: {', '.join(SCORES)})")
        self.score = score
        self.calibration_items = calibration_items
        self.order: list | None = None

    def prepare(self, evaluator) -> None:
        if self.order is not None:
            return
        model = evaluator.model
        input_ids, attention_mask = evaluator.calibration_batch(max_items=self.calibration_items)
        space = self.space
        if self.score == "finercut":
            self.order = finercut_order(model, space, input_ids, attention_mask,
                                        stop=lambda skipped: space.meets_target(space.chain_skipping(skipped)))
        else:
            scores = unit_scores(model, input_ids, attention_mask, self.score, space.sub_blocks)
            self.order = sorted(space.units, key=lambda unit: (scores[unit], unit))

    def schedule(self) -> Schedule:
        if self.order is None:
            raise SearcherError("greedy: prepare(evaluator) must run before ask")
        skipped = []
        for unit in self.order:
            if self.space.meets_target(self.space.chain_skipping(skipped)):
                break
            skipped.append(unit)
        return self.space.schedule_skipping(skipped)
