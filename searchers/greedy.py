"""Baseline: importance pruning. Units are removed least-important first until the target is reached.

Scores: ShortGPT's Block Influence (measured once on the full model, one forward pass), or FinerCut's
removal of the unit that changes the output logits least, re-measured after each removal (one
forward pass per candidate per step). Both count their forward passes in ``prepare_cost``, which the
run loop charges to the budget. Gromov et al.'s angular-distance block pruning is the ``gromov``
searcher: ranked per layer, angular distance orders units exactly as Block Influence does.
"""

from __future__ import annotations

from colasearch.importance import finercut_order, unit_scores
from colasearch.priors import DEFAULT_CALIBRATION_ITEMS
from colasearch.schedule import Schedule
from colasearch.searchers.base import ConstructedBaseline, SearcherError

SCORES = ("block_influence", "finercut")


class GreedySearcher(ConstructedBaseline):
    name = "greedy"

    def __init__(self, space, objective, seed: int = 0, *, score: str = "block_influence",
                 calibration_items: int = DEFAULT_CALIBRATION_ITEMS, **options):
        super().__init__(space, objective, seed, **options)
        if score == "angular":
            raise SearcherError("greedy: score 'angular' ranks units exactly as 'block_influence' (both are monotone "
                                "in the same cosine); Gromov et al.'s angular-distance pruning is --searcher gromov")
        if score not in SCORES:
            raise SearcherError(f"greedy: unknown score {score!r} (known: {', '.join(SCORES)})")
        self.score = score
        self.calibration_items = calibration_items
        self.order: list | None = None
        self.prepare_cost = 0

    def prepare(self, evaluator) -> None:
        if self.order is not None:
            return
        model = evaluator.model
        input_ids, attention_mask = evaluator.calibration_batch(max_items=self.calibration_items)
        items = int(input_ids.shape[0])
        space = self.space
        if self.score == "finercut":
            walk = finercut_order(model, space, input_ids, attention_mask,
                                  stop=lambda skipped: space.meets_target(space.chain_skipping(skipped)))
            self.order = walk.removed
            self.prepare_cost = walk.forwards * items
        else:
            scores = unit_scores(model, input_ids, attention_mask, self.score, space.sub_blocks)
            self.order = sorted(space.units, key=lambda unit: (scores[unit], unit))
            self.prepare_cost = items

    def schedule(self) -> Schedule:
        if self.order is None:
            raise SearcherError("greedy: prepare(evaluator) must run before ask")
        return self.space.schedule_skipping(self.space.skips_until_target(self.order))
