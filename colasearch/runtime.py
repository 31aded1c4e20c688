"""Execute a schedule on a Hugging Face decoder: patch in place, no weight copied, KV cache kept right.

The decoder's own forward loop is reused. Its ``layers`` list is swapped for a ``ScheduledLayers``
list that keeps the original layers registered under their original names (so parameters, their
storage and the state dict are untouched) but iterates over the executed chain. Each chain entry
owns its own KV-cache slot, so a repeated layer never overwrites its twin's keys and values.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import torch
from torch import nn

from colasearch.decoder import decoder_of
from colasearch.errors import ScheduleError
from colasearch.fingerprint import text_config
from colasearch.schedule import LayerEntry, Schedule

# Families whose decoder layers are pre-norm residual blocks: x + attn(norm(x)), then x + mlp(norm(x)).
PRENORM_FAMILIES = {
    "llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "phi3", "granite",
}
# Families that add a norm after each sub-block (sandwich norm).
SANDWICH_FAMILIES = {"gemma2", "gemma3_text", "olmo2"}
SUPPORTED_FAMILIES = PRENORM_FAMILIES | SANDWICH_FAMILIES | {"gemma", "gemma3"}


class ForwardPatch(Protocol):
    """An extension that changes how layers compute their forward (MoE expert gating), applied with a schedule.

    The runtime defines this hook and knows no extension: an extension registers itself with
    :func:`register_forward_patch` when it is imported (``colasearch/__init__.py`` imports the built-in ones).
    """

    name: str

    def plan(self, model, schedule: Schedule) -> Any | None:
        """Check that ``schedule`` fits ``model`` and prepare the patch, touching nothing; None: nothing to patch."""

    def install(self, model, plan: Any) -> None:
        """Patch ``model`` as ``plan`` says; called after the layer chain is in place."""

    def remove(self, model) -> None:
        """Undo :meth:`install`; a no-op on a model without the patch."""


FORWARD_PATCHES: dict[str, ForwardPatch] = {}


def register_forward_patch(patch: ForwardPatch) -> ForwardPatch:
    FORWARD_PATCHES[patch.name] = patch
    return patch


def family_of(model) -> str:
    model_type = getattr(text_config(model.config), "model_type", None)
    if model_type not in SUPPORTED_FAMILIES:
        raise ScheduleError(
            f"architecture {model_type!r} is not supported (supported: {', '.join(sorted(SUPPORTED_FAMILIES))})"
        )
    return model_type


def _first_output(output):
    return output[0] if isinstance(output, tuple) else output


class ScheduledEntry:
    """Runs one chain entry. Deliberately not an nn.Module: the layer it calls stays registered only once."""

    def __init__(self, layer: nn.Module, entry: LayerEntry, slot: int, sandwich: bool):
        self.layer = layer
        self.entry = entry
        self.slot = slot
        self.sandwich = sandwich

    @property
    def attention_type(self):
        return getattr(self.layer, "attention_type", None)

    def __getattr__(self, name):
        # Model code sometimes reads attributes of its layers (attention_type, sliding flags).
        return getattr(self.__dict__["layer"], name)

    def __call__(self, hidden_states, *args, **kwargs):
        attention = self.layer.self_attn
        original_slot = attention.layer_idx
        attention.layer_idx = self.slot
        try:
            if self.entry.run == "all":
                return self.layer(hidden_states, *args, **kwargs)
            if self.entry.run == "attn":
                return self._attention_block(hidden_states, **kwargs)
            return self._mlp_block(hidden_states)
        finally:
            attention.layer_idx = original_slot

    def _attention_block(self, hidden_states, **kwargs):
        layer = self.layer
        update = _first_output(layer.self_attn(hidden_states=layer.input_layernorm(hidden_states), **kwargs))
        if self.sandwich:
            update = layer.post_attention_layernorm(update)
        return hidden_states + update

    def _mlp_block(self, hidden_states):
        layer = self.layer
        if self.sandwich:
            update = layer.post_feedforward_layernorm(_first_output(layer.mlp(layer.pre_feedforward_layernorm(hidden_states))))
        else:
            update = _first_output(layer.mlp(layer.post_attention_layernorm(hidden_states)))
        return hidden_states + update


class ScheduledLayers(nn.ModuleList):
    """Registers the original layers as before but iterates over the executed chain."""

    def __init__(self, originals: nn.ModuleList, chain: list[ScheduledEntry]):
        object.__setattr__(self, "chain", chain)
        super().__init__()
        for index, layer in enumerate(originals):
            self.add_module(str(index), layer)

    def __iter__(self):
        return iter(self.chain)

    def __len__(self):
        return len(self.chain)

    def __getitem__(self, index):
        return self.chain[index]


def assign_cache_slots(entries: tuple[LayerEntry, ...]) -> list[int]:
    """One cache slot per chain position; the first entry that runs attention owns slot 0.

    The decoder reads the sequence length from slot 0, so that slot must be written by attention.
    Slot = chain position otherwise, which keeps ``config.layer_types[i]`` right both for the mask
    of position i and for the cache layer of slot i.
    """
    slots = list(range(len(entries)))
    first_attention = next((i for i, entry in enumerate(entries) if entry.runs_attention), None)
    if first_attention:
        slots[0], slots[first_attention] = first_attention, 0
    return slots


def _per_entry_layer_types(original_types, entries, slots):
    """``layer_types[i]`` picks the mask of position i and the cache-layer type of slot i.

    Attention entries sit at slot = position, so both readings agree. The slots of MLP-only entries
    stay empty; they get slot 0's type, because masking reads its sizes from the *first* slot of
    each type, and an empty slot must never be that first one.
    """
    owner_of_slot0 = slots.index(0)
    slot0_type = original_types[entries[owner_of_slot0].layer]
    return [original_types[entry.layer] if entry.runs_attention else slot0_type for entry in entries]


def apply_schedule(model, schedule: Schedule, force: bool = False):
    """Patch ``model`` in place to execute ``schedule``. Undo with :func:`restore`."""
    if getattr(model, "_colasearch_saved_config", None) is not None:
        restore(model)
    family = family_of(model)
    schedule.check_fits(model, force=force)
    # Checked before anything is patched, so a refused section leaves the model untouched.
    plans = {name: patch.plan(model, schedule) for name, patch in FORWARD_PATCHES.items()}
    decoder = decoder_of(model)
    config = text_config(model.config)
    originals = decoder.layers
    sandwich = family in SANDWICH_FAMILIES
    if any(entry.run != "all" for entry in schedule.layers):
        sample = originals[0]
        needed = ["self_attn", "input_layernorm", "mlp"] + (
            ["post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"] if sandwich
            else ["post_attention_layernorm"]
        )
        missing = [name for name in needed if not hasattr(sample, name)]
        if missing or family in {"gemma", "gemma3"}:
            raise ScheduleError(f"sub-block entries are not supported for {family} layers")
    slots = assign_cache_slots(schedule.layers)
    chain = [ScheduledEntry(originals[entry.layer], entry, slot, sandwich) for entry, slot in zip(schedule.layers, slots)]

    saved = {"num_hidden_layers": config.num_hidden_layers}
    original_types = getattr(config, "layer_types", None)
    if original_types is not None:
        saved["layer_types"] = original_types
    object.__setattr__(model, "_colasearch_saved_config", saved)
    object.__setattr__(model, "_colasearch_originals", originals)
    object.__setattr__(model, "_colasearch_schedule", schedule)

    config.num_hidden_layers = len(chain)
    if original_types is not None:
        config.layer_types = _per_entry_layer_types(original_types, schedule.layers, slots)
    decoder.layers = ScheduledLayers(originals, chain)
    for name, plan in plans.items():
        if plan is not None:
            FORWARD_PATCHES[name].install(model, plan)
    return model


def restore(model):
    """Undo :func:`apply_schedule`; the model is exactly as it was."""
    for patch in FORWARD_PATCHES.values():
        patch.remove(model)
    saved = getattr(model, "_colasearch_saved_config", None)
    if saved is None:
        return model
    config = text_config(model.config)
    for name, value in saved.items():
        setattr(config, name, value)
    decoder_of(model).layers = model._colasearch_originals
    for name in ("_colasearch_saved_config", "_colasearch_originals", "_colasearch_schedule"):
        object.__setattr__(model, name, None)
    return model


def applied_schedule(model) -> Schedule | None:
    return getattr(model, "_colasearch_schedule", None)


@contextlib.contextmanager
def scheduled(model, schedule: Schedule | None, force: bool = False):
    """``with scheduled(model, s): ...`` runs ``s`` inside the block; ``None`` means the full model."""
    if schedule is None:
        yield model
        return
    apply_schedule(model, schedule, force=force)
    try:
        yield model
    finally:
        restore(model)


@torch.no_grad()
def greedy_generate(model, input_ids, attention_mask=None, max_new_tokens: int = 16, use_cache: bool = True):
    """Plain greedy decoding through ``model.generate`` (the path users take)."""
    return model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        use_cache=use_cache,
        pad_token_id=model.config.pad_token_id if model.config.pad_token_id is not None else 0,
    )
