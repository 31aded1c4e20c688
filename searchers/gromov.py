"""Baseline: Gromov et al., "The Unreasonable Ineffectiveness of the Deeper Layers" (2024).

Skip the contiguous block of n layers whose input (the residual stream entering its first layer)
and output (leaving its last layer) are closest in angular distance, arccos(cos) / pi, at the last
token of each calibration sequence, averaged over sequences. n is the smallest block size that
reaches the speed target. One forward pass with hidden states; ``prepare_cost`` counts it. Whole
layers only (the paper prunes blocks of layers), also in a sub-block search space.
"""

from __future__ import annotations

from colasearch.importance import block_angular_distances
from colasearch.priors import DEFAULT_CALIBRATION_ITEMS
from colasearch.schedule import Schedule
from colasearch.searchers.base import ConstructedBaseline, SearcherError


class GromovSearcher(ConstructedBaseline):
    name = "gromov"

    def __init__(self, space, objective, seed: int = 0, *,
                 calibration_items: int = DEFAULT_CALIBRATION_ITEMS, **options):
        super().__init__(space, objective, seed, **options)
        self.calibration_items = calibration_items
        self.distances = None  # [L+1, L+1] tensor, see block_angular_distances
        self.block: tuple[int, int] | None = None  # (first layer, size) once chosen
        self.prepare_cost = 0

    def prepare(self, evaluator) -> None:
        if self.distances is not None:
            return
        input_ids, attention_mask = evaluator.calibration_batch(max_items=self.calibration_items)
        self.distances = block_angular_distances(evaluator.model, input_ids, attention_mask)
        self.prepare_cost = int(input_ids.shape[0])

    def _blocks(self, size: int):
        """Chains skipping each allowed block of ``size`` layers, with the block's distance."""
        space = self.space
        for start in range(space.num_layers - size + 1):
            layers = range(start, start + size)
            if any(layer in space.protected_layers for layer in layers):
                continue
            chain = space.chain_skipping([(layer, "all") for layer in layers])
            if chain and space.length_ok(chain) and space.meets_target(chain):
                yield float(self.distances[start, start + size]), start, chain

    def schedule(self) -> Schedule:
        if self.distances is None:
            raise SearcherError("gromov: prepare(evaluator) must run before ask")
        for size in range(1, self.space.num_layers + 1):
            candidates = sorted(self._blocks(size))
            if candidates:
                _, start, chain = candidates[0]
                self.block = (start, size)
                return self.space.schedule(chain)
        raise SearcherError(f"gromov: no contiguous block of skippable layers reaches {self.space.target_speedup:g}x")
