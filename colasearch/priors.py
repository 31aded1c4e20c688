"""Prior knowledge from one cheap pass, computed once per run and shared by every searcher.

A searcher that starts from nothing spends its first evaluations rediscovering what one forward
pass of importance scoring already says (ShortGPT's Block Influence: a layer whose output is
nearly its input does little). The run loop computes that pass once, on search-split items only,
counts it against the budget, stores it with the study (a resumed run reads it back), and hands
it to the searcher and to the projection onto the target cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from colasearch.errors import ColasearchError

#: Calibration sequences of one importance pass, for the prior and for the one-shot baselines alike: the
#: search then starts from exactly the schedule ``--searcher greedy`` returns, so the final choice, which
#: keeps the start unless a candidate clearly beats it, is never worse than that baseline on the search
#: items. (With 32 for the prior and 16 for the baseline, the two answers differed at PIQA 1.1x by 3.4
#: held-out points, and the search, which kept its start, was scored against the other one.)
DEFAULT_CALIBRATION_ITEMS = 16

Unit = tuple[int, str]


@dataclass(frozen=True)
class Prior:
    """Per-unit importance (higher = more important to keep) and what computing it cost."""

    importance: dict[Unit, float]
    #: Item-forwards spent on it (one per calibration sequence), counted against the run's budget.
    cost: int = 0
    source: str = "block_influence"
    #: In a sub-block space, each whole layer's own importance from the same pass: whole-layer pruning by
    #: it is exactly ShortGPT's answer, which the sum of a layer's two blocks is not.
    layers: dict[int, float] | None = None

    @property
    def order(self) -> list[Unit]:
        """Units least important first: the order in which one-shot pruning removes them."""
        return sorted(self.importance, key=lambda unit: (self.importance[unit], unit))

    def of(self, unit: Unit) -> float:
        """A unit's importance; a whole layer is its two sub-blocks together, and vice versa."""
        if unit in self.importance:
            return self.importance[unit]
        layer, run = unit
        if run == "all":
            if self.layers is not None and layer in self.layers:
                return self.layers[layer]
            return sum(self.importance.get((layer, part), 0.0) for part in ("attn", "mlp"))
        return self.importance.get((layer, "all"), 0.0) / 2

    def to_dict(self) -> dict:
        data = {"source": self.source, "cost": self.cost,
                "importance": [[layer, run, value] for (layer, run), value in sorted(self.importance.items())]}
        if self.layers is not None:
            data["layers"] = [[layer, value] for layer, value in sorted(self.layers.items())]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Prior:
        importance = {(int(layer), str(run)): float(value) for layer, run, value in data["importance"]}
        layers = {int(layer): float(value) for layer, value in data["layers"]} if "layers" in data else None
        return cls(importance, int(data.get("cost", 0)), str(data.get("source", "block_influence")), layers)


def compute_prior(evaluator, space, calibration_items: int = DEFAULT_CALIBRATION_ITEMS) -> Prior | None:
    """Block Influence of every unit of ``space`` from one forward pass over search-split items.

    ``None`` where the evaluator has no text to calibrate on (a stand-in evaluator in tests, or a task
    without token sequences): searchers then start without a prior, and projection goes by cost alone.
    """
    from colasearch.importance import unit_scores

    try:
        input_ids, attention_mask = evaluator.calibration_batch(max_items=calibration_items)
    except ColasearchError:  # the evaluator has no token text (BaseEvaluator's default), or the task none
        return None
    scores = unit_scores(evaluator.model, input_ids, attention_mask, "block_influence", space.sub_blocks)
    importance = {unit: float(scores[unit]) for unit in space.units}
    layers = {layer: float(scores[(layer, "all")]) for layer, _ in space.units} if space.sub_blocks else None
    return Prior(importance, cost=int(input_ids.shape[0]), layers=layers)
