"""One KV cache for the full model and its draft (Draft & Verify style sharing).

The full model owns a ``DynamicCache`` with one slot per decoder layer. The draft runs through a
*view*: a cache whose slot ``q`` (as the runtime numbers the draft's chain) is a reference to a
layer object. An entry that is the first in the draft's chain to run the attention of layer ``i``
reads and writes the full model's slot ``i`` itself: it attends over the full model's verified
keys and values of the past and needs no cache of its own. A repeated attention entry (its twin
already owns slot ``i``) gets a private slot that only the draft uses; MLP-only entries get an
empty placeholder. Nothing the draft writes ever reaches the verifier: shared slots are cropped back
to the verified length before every verify pass, which then writes every layer itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import DynamicCache
from transformers.cache_utils import Cache

from colasearch.runtime import assign_cache_slots
from colasearch.schedule import Schedule


def new_full_cache(model) -> DynamicCache:
    """A cache for the unpatched model whose every layer can be rolled back (``crop``)."""
    cache = DynamicCache(config=model.config)
    cache.activate_past_recording()
    return cache


def _fresh_layer_like(model, layer_index: int):
    layer = DynamicCache(config=model.config).layers[layer_index]
    if hasattr(layer, "activate_past_recording"):
        layer.activate_past_recording()
    return layer


def crop_layer_to(layer, length: int) -> None:
    """Absolute crop of one cache layer; ``crop(0)`` also trims a sliding layer back to its window."""
    if not getattr(layer, "is_initialized", False):
        return
    excess = layer.get_seq_length() - length
    if excess < 0:
        raise RuntimeError(f"cache layer holds {layer.get_seq_length()} tokens, fewer than the {length} asked for")
    layer.crop(-excess)


def _view(layers: list) -> Cache:
    view = DynamicCache.__new__(DynamicCache)
    Cache.__init__(view, layers=layers)
    return view


@dataclass
class SharedDraftCache:
    """The full model's cache plus the draft's view of it.

    ``shared`` lists the full-model slots the draft writes; ``private`` the draft-only slots, which
    must be kept in step with the committed tokens (the decoding loop does that).
    """

    full: DynamicCache
    draft_view: Cache
    shared: tuple[int, ...]
    private: tuple[object, ...]
    draft_entry_slots: tuple[str, ...]

    @classmethod
    def build(cls, model, schedule: Schedule, share: bool = True) -> SharedDraftCache:
        """``model`` must be unpatched here: the full cache follows its real config.

        With ``share=False`` every attention entry of the draft gets a private slot: the draft then
        runs exactly as the schedule alone would, at the price of its own cache.
        """
        full = new_full_cache(model)
        slots = assign_cache_slots(schedule.layers)
        owners: dict[int, int] = {}
        for position, entry in enumerate(schedule.layers):
            if share and entry.runs_attention and entry.layer not in owners:
                owners[entry.layer] = position
        slot0_position = slots.index(0)
        slot0_layer = schedule.layers[slot0_position].layer
        view_layers: list = [None] * len(slots)
        private, kinds = [], []
        for position, (entry, slot) in enumerate(zip(schedule.layers, slots)):
            if entry.runs_attention and owners.get(entry.layer) == position:
                view_layers[slot] = full.layers[entry.layer]
                kinds.append("shared")
            elif entry.runs_attention:
                view_layers[slot] = _fresh_layer_like(model, entry.layer)
                private.append(view_layers[slot])
                kinds.append("private")
            else:
                # Never written; shaped like slot 0 so it is never the first slot of a new type.
                view_layers[slot] = _fresh_layer_like(model, slot0_layer)
                kinds.append("none")
        shared = tuple(sorted(owners))
        return cls(full, _view(view_layers), shared, tuple(private), tuple(kinds))

    def private_prefill_view(self) -> Cache:
        """The draft's view with throwaway layers in place of the shared slots.

        Used once, to fill the private slots over the prompt without touching the full model's slots.
        """
        private = {id(layer) for layer in self.private}
        layers = [layer if id(layer) in private else _fresh_layer_like_object(layer) for layer in self.draft_view.layers]
        return _view(layers)

    def crop_full(self, length: int) -> None:
        for layer in self.full.layers:
            crop_layer_to(layer, length)

    def crop_draft(self, length: int) -> None:
        for index in self.shared:
            crop_layer_to(self.full.layers[index], length)
        self.crop_private(length)

    def crop_private(self, length: int) -> None:
        for layer in self.private:
            crop_layer_to(layer, length)

    @property
    def has_private_slots(self) -> bool:
        return bool(self.private)


def _fresh_layer_like_object(layer):
    fresh = type(layer)(sliding_window=layer.sliding_window) if hasattr(layer, "sliding_window") else type(layer)()
    if hasattr(fresh, "activate_past_recording"):
        fresh.activate_past_recording()
    return fresh
