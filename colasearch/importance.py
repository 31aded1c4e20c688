"""Importance of layers and sub-blocks from hidden states on a calibration batch.

- Block Influence (ShortGPT): 1 - cos(input, output) of a unit, averaged over real tokens.
- Angular distance (Gromov et al.): arccos(cos(input, output)) / pi.
- FinerCut-style: how much the model's final hidden state moves when a unit is removed, given the
  units already removed; the least-moving unit is removed next.
Scores are higher for more important units.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from colasearch.runtime import decoder_of, scheduled

SCORES = ("block_influence", "angular", "finercut")


def _similarity(before: torch.Tensor, after: torch.Tensor, mask: torch.Tensor) -> float:
    cosine = torch.nn.functional.cosine_similarity(before.float(), after.float(), dim=-1).clamp(-1.0, 1.0)
    # The mask comes with the inputs; on a split model the states come from a later device.
    weights = mask.to(device=cosine.device, dtype=cosine.dtype)
    return float((cosine * weights).sum() / weights.sum())


@torch.no_grad()
def unit_states(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per layer: the residual stream before the layer, after its attention, and after the layer."""
    layers = decoder_of(model).layers
    captured: dict[int, dict[str, torch.Tensor]] = {index: {} for index in range(len(layers))}
    handles = []

    def first(value):
        return value[0] if isinstance(value, tuple) else value

    for index, layer in enumerate(layers):
        def layer_hook(module, args, kwargs, output, index=index):
            hidden = args[0] if args else kwargs["hidden_states"]
            captured[index]["in"] = hidden
            captured[index]["out"] = first(output)

        def attention_hook(module, args, kwargs, output, index=index):
            captured[index]["attn"] = first(output)

        handles.append(layer.register_forward_hook(layer_hook, with_kwargs=True))
        handles.append(layer.self_attn.register_forward_hook(attention_hook, with_kwargs=True))
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, logits_to_keep=1)
    finally:
        for handle in handles:
            handle.remove()
    return [(parts["in"], parts["in"] + parts["attn"], parts["out"]) for parts in captured.values()]


def _score(similarity: float, kind: str) -> float:
    return 1.0 - similarity if kind == "block_influence" else math.acos(max(-1.0, min(1.0, similarity))) / math.pi


@torch.no_grad()
def unit_scores(model, input_ids, attention_mask, kind: str = "block_influence", sub_blocks: bool = False) -> dict:
    """Score of each unit (layer, run) measured once on the full model."""
    if kind not in ("block_influence", "angular"):
        raise ValueError(f"unit_scores measures block_influence or angular, not {kind!r}")
    scores = {}
    for layer, (before, middle, after) in enumerate(unit_states(model, input_ids, attention_mask)):
        if sub_blocks:
            scores[(layer, "attn")] = _score(_similarity(before, middle, attention_mask), kind)
            scores[(layer, "mlp")] = _score(_similarity(middle, after, attention_mask), kind)
        else:
            scores[(layer, "all")] = _score(_similarity(before, after, attention_mask), kind)
    return scores


@torch.no_grad()
def _final_states(model, schedule, input_ids, attention_mask) -> torch.Tensor:
    with scheduled(model, schedule):
        output = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, output_hidden_states=True)
    return output.hidden_states[-1]


@torch.no_grad()
def finercut_order(model, space, input_ids, attention_mask, units: Iterable | None = None,
                   stop=lambda skipped: False) -> list:
    """Units in the order FinerCut removes them: each time the one whose removal moves the output least.

    ``stop(skipped)`` ends the walk early (e.g. once the speed target is reached).
    """
    reference = _final_states(model, None, input_ids, attention_mask)
    remaining = list(units if units is not None else space.units)
    removed: list = []
    while remaining and not stop(removed):
        best_unit, best_similarity = None, -math.inf
        for unit in remaining:
            schedule = space.schedule_skipping(removed + [unit])
            if schedule is None:
                continue
            similarity = _similarity(reference, _final_states(model, schedule, input_ids, attention_mask), attention_mask)
            if similarity > best_similarity:
                best_unit, best_similarity = unit, similarity
        if best_unit is None:
            break
        removed.append(best_unit)
        remaining.remove(best_unit)
    return removed
