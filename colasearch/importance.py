"""Importance of layers and sub-blocks on a calibration batch, for the published one-shot baselines.

- Block Influence (ShortGPT): 1 - cos(input, output) of a unit, averaged over real tokens, from one
  forward pass. Higher = more important.
- Block angular distance (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper Layers"):
  arccos(cos(h_l, h_{l+n})) / pi between the residual stream entering layer l and leaving layer
  l+n-1, at the last token of each sequence, averaged over sequences; from one forward pass. The
  baseline skips the contiguous block with the smallest distance (``searchers/gromov.py``). A
  per-layer angular distance would rank layers exactly as Block Influence does (both are monotone
  in the same cosine), so there is no per-layer "angular" score.
- FinerCut (Zhang et al.): repeatedly remove the unit whose removal changes the model's output
  distribution least, given the units already removed. The change is measured on the LOGITS, as the
  mean KL(full || pruned) of the next-token distributions at every real token of the batch
  (a divergence of the log-softmax, so a uniform shift of the logits costs nothing). One forward
  pass per candidate per step, so O(units x steps) passes: its caller counts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch

from colasearch.decoder import decoder_of
from colasearch.runtime import scheduled

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
    """Score of each unit (layer, run) measured once on the full model (one forward pass).

    Whole layers (``(layer, "all")``) are always scored; with ``sub_blocks`` their attention and MLP blocks
    too, from the same pass. A layer's own score is not its blocks' together: ShortGPT's whole-layer order
    needs the former."""
    if kind not in ("block_influence", "angular"):
        raise ValueError(f"unit_scores measures block_influence or angular, not {kind!r}")
    scores = {}
    for layer, (before, middle, after) in enumerate(unit_states(model, input_ids, attention_mask)):
        scores[(layer, "all")] = _score(_similarity(before, after, attention_mask), kind)
        if sub_blocks:
            scores[(layer, "attn")] = _score(_similarity(before, middle, attention_mask), kind)
            scores[(layer, "mlp")] = _score(_similarity(middle, after, attention_mask), kind)
    return scores


def _last_real_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token, whichever side the padding is on."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * (attention_mask != 0)).argmax(dim=1)


@torch.no_grad()
def block_angular_distances(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``D[i, j]`` (i < j): mean over sequences of arccos(cos(h_i, h_j)) / pi at the last real token.

    ``h_i`` is the residual stream entering layer i (``h_L`` leaves the last layer, before the final
    norm), so skipping layers i..j-1 is scored by ``D[i, j]``. One forward pass.
    """
    states = unit_states(model, input_ids, attention_mask)
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    last = _last_real_positions(attention_mask)
    stream = [states[0][0][rows, last]] + [after[rows, last] for _, _, after in states]
    stacked = torch.nn.functional.normalize(torch.stack(stream).float(), dim=-1)   # [L+1, batch, hidden]
    cosine = torch.einsum("ibh,jbh->ijb", stacked, stacked).clamp(-1.0, 1.0)
    return (torch.arccos(cosine) / math.pi).mean(dim=-1)


@torch.no_grad()
def _log_probs(model, schedule, input_ids, attention_mask) -> torch.Tensor:
    """Next-token log-probabilities at the real tokens, ``[real tokens, vocab]``, in float32."""
    with scheduled(model, schedule):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    return torch.log_softmax(logits[attention_mask.bool()].float(), dim=-1)


def _mean_kl(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Mean over tokens of KL(reference || candidate), both given as log-probabilities."""
    return float((reference.exp() * (reference - candidate)).sum(dim=-1).mean())


@dataclass(frozen=True)
class FinerCutWalk:
    removed: list      # units in the order FinerCut removed them
    forwards: int      # forward passes over the calibration batch it took (reference included)


@torch.no_grad()
def finercut_order(model, space, input_ids, attention_mask, units: Iterable | None = None,
                   stop=lambda skipped: False) -> FinerCutWalk:
    """Units in the order FinerCut removes them: each time the one whose removal changes the logits least.

    ``stop(skipped)`` ends the walk early (e.g. once the speed target is reached).
    """
    reference = _log_probs(model, None, input_ids, attention_mask)
    forwards = 1
    remaining = list(units if units is not None else space.units)
    removed: list = []
    while remaining and not stop(removed):
        best_unit, best_divergence = None, math.inf
        for unit in remaining:
            chain = space.chain_skipping(removed + [unit])
            if not chain or not space.length_ok(chain):
                continue
            divergence = _mean_kl(reference, _log_probs(model, space.schedule(chain), input_ids, attention_mask))
            forwards += 1
            if divergence < best_divergence:
                best_unit, best_divergence = unit, divergence
        if best_unit is None:
            break
        removed.append(best_unit)
        remaining.remove(best_unit)
    return FinerCutWalk(removed, forwards)
