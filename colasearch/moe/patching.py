"""Install the MoDES gate into a model's sparse MoE blocks, in place, and take it out again.

The skipped (token, expert) pairs never reach the experts module: the kept pairs are packed as
one-expert tokens and handed to the model's own ``experts`` (eager, grouped_mm or batched_mm alike),
then added back per token. An expert nobody kept receives no token and costs nothing.
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass, field

import torch
from torch import nn

from colasearch.decoder import decoder_of
from colasearch.errors import ScheduleError
from colasearch.fingerprint import num_experts_of, text_config
from colasearch.moe.families import FAMILIES, SparseBlockFamily
from colasearch.moe.gating import TOKEN_GROUPS, LayerGate, renormalized, threshold_vector
from colasearch.runtime import register_forward_patch
from colasearch.schedule import ExpertSkipping, Schedule

_STATE = "_colasearch_expert_skipping"


@dataclass
class SkipStats:
    """Routed (token, top-k slot) pairs seen and skipped per decoder layer, over the recorded forwards."""

    routed: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, int] = field(default_factory=dict)

    def add(self, layer: int, routed: int, skipped: int) -> None:
        self.routed[layer] = self.routed.get(layer, 0) + routed
        self.skipped[layer] = self.skipped.get(layer, 0) + skipped

    @property
    def ratio(self) -> float:
        """Fraction of routed expert work skipped: every routed pair costs one expert of equal size."""
        total = sum(self.routed.values())
        return sum(self.skipped.values()) / total if total else 0.0

    def layer_ratio(self, layer: int) -> float:
        return self.skipped.get(layer, 0) / self.routed[layer] if self.routed.get(layer) else 0.0


@dataclass
class ExpertGates:
    """What is installed on one model: a gate per sparse block, plus per-forward token information."""

    blocks: dict[int, nn.Module]
    gates: dict[int, LayerGate]
    # Set by a vision-language adapter (ids into TOKEN_GROUPS per flattened token); None means all text.
    group_ids: torch.Tensor | None = None
    # Set while recording: which flattened tokens count (padding does not), and where counts go.
    count_mask: torch.Tensor | None = None
    stats: SkipStats | None = None

    def record(self, layer: int, skipped: torch.Tensor) -> None:
        if self.stats is None:
            return
        if self.count_mask is not None and self.count_mask.numel() == skipped.shape[0]:
            skipped = skipped[self.count_mask.to(skipped.device)]
        self.stats.add(layer, skipped.numel(), int(skipped.sum()))

    def dispatch_for(self, gate: LayerGate):
        def dispatch(experts, flat, router_logits, top_k_weights, top_k_index):
            group_ids = self.group_ids
            if group_ids is not None and group_ids.numel() != flat.shape[0]:
                group_ids = None
            skipped = gate.skipped(router_logits, top_k_index, group_ids)
            self.record(gate.layer, skipped)
            if not bool(skipped.any()):
                return experts(flat, top_k_index, top_k_weights)
            kept = ~skipped
            weights = renormalized(top_k_weights, kept) if gate.renormalize else top_k_weights
            token, slot = kept.nonzero(as_tuple=True)
            output = torch.zeros_like(flat)
            if token.numel():
                rows = experts(flat[token], top_k_index[token, slot].unsqueeze(1), weights[token, slot].unsqueeze(1))
                output.index_add_(0, token, rows.to(output.dtype))
            return output

        return dispatch


def _original_layers(model):
    return getattr(model, "_colasearch_originals", None) or decoder_of(model).layers


def _family(model) -> tuple[str, SparseBlockFamily]:
    config = text_config(model.config)
    model_type = getattr(config, "model_type", None)
    if model_type in FAMILIES:
        return model_type, FAMILIES[model_type]
    supported = ", ".join(sorted(FAMILIES))
    if not num_experts_of(config):
        raise ScheduleError(
            f"the schedule has an 'experts' section but {model_type!r} is a dense model with no routed experts "
            f"(expert skipping is for MoE models: {supported})"
        )
    raise ScheduleError(f"expert skipping does not support {model_type!r} yet (supported: {supported})")


def sparse_blocks(model) -> tuple[SparseBlockFamily, dict[int, nn.Module]]:
    """Original decoder layer index -> its sparse MoE block (dense-MLP layers are left out)."""
    model_type, family = _family(model)
    blocks = {index: layer.mlp for index, layer in enumerate(_original_layers(model))
              if family.is_sparse_block(getattr(layer, "mlp", None))}
    if not blocks:
        raise ScheduleError(
            f"found no {family.block_class_name} in this {model_type} model (unexpected transformers version?)")
    return family, blocks


def plan_gates(model, section: ExpertSkipping) -> tuple[SparseBlockFamily, dict[int, nn.Module], dict[int, LayerGate]]:
    """Check that ``section`` fits ``model`` and build its gates; touches nothing."""
    family, blocks = sparse_blocks(model)
    num_layers = len(_original_layers(model))
    if len(section.importance) != num_layers:
        raise ScheduleError(
            f"experts.importance has {len(section.importance)} values but the model has {num_layers} layers "
            "(one per layer)"
        )
    text_only = [group for group in section.thresholds if group != "text"]
    if text_only:
        raise ScheduleError(
            f"experts.thresholds names token group {text_only[0]!r}, but this model reads text tokens only"
        )
    thresholds = threshold_vector(section.thresholds)
    # Thresholds live next to each block's router, so gating copies nothing between devices.
    gates = {index: LayerGate(index, section.importance[index], thresholds.to(block.gate.weight.device),
                              section.renormalize)
             for index, block in blocks.items()}
    return family, blocks, gates


def install_gates(model, family: SparseBlockFamily, blocks: dict[int, nn.Module], gates: dict[int, LayerGate]):
    remove_expert_skipping(model)
    state = ExpertGates(blocks=blocks, gates=gates)
    for index, block in blocks.items():
        dispatch = state.dispatch_for(gates[index])
        # An instance attribute shadows the class's forward; deleting it brings the original back.
        block.forward = types.MethodType(
            lambda self, hidden_states, _dispatch=dispatch: family.forward(self, hidden_states, _dispatch), block)
    object.__setattr__(model, _STATE, state)
    return state


def apply_expert_skipping(model, section: ExpertSkipping):
    """Patch ``model``'s sparse MoE blocks to skip experts as ``section`` says.

    Undo with :func:`remove_expert_skipping`; ``apply_schedule``/``restore`` do both for a schedule.
    """
    install_gates(model, *plan_gates(model, section))
    return model


def remove_expert_skipping(model):
    state: ExpertGates | None = getattr(model, _STATE, None)
    if state is None:
        return model
    for block in state.blocks.values():
        block.__dict__.pop("forward", None)
    object.__setattr__(model, _STATE, None)
    return model


def installed_gates(model) -> ExpertGates | None:
    return getattr(model, _STATE, None)


@contextlib.contextmanager
def recording(model, attention_mask: torch.Tensor | None = None):
    """Count routed and skipped pairs of the forwards run inside the block (padding excluded)."""
    state = installed_gates(model)
    if state is None:
        raise ScheduleError("no expert skipping is installed on this model")
    stats = SkipStats()
    state.stats = stats
    state.count_mask = attention_mask.reshape(-1).bool() if attention_mask is not None else None
    try:
        yield stats
    finally:
        state.stats = None
        state.count_mask = None


class ExpertSkippingPatch:
    """Applies a schedule's ``experts`` section through the runtime's forward-patch hook."""

    name = "experts"

    def plan(self, model, schedule: Schedule):
        return plan_gates(model, schedule.experts) if schedule.experts is not None else None

    def install(self, model, plan) -> None:
        install_gates(model, *plan)

    def remove(self, model) -> None:
        remove_expert_skipping(model)


register_forward_patch(ExpertSkippingPatch())


__all__ = [
    "ExpertGates", "ExpertSkippingPatch", "SkipStats", "TOKEN_GROUPS", "apply_expert_skipping", "install_gates", "installed_gates",
    "plan_gates", "recording", "remove_expert_skipping", "sparse_blocks",
]
