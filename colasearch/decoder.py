"""Where a Hugging Face causal LM keeps its decoder layers: the one fact the runtime and its extensions share."""

from __future__ import annotations

from torch import nn

from colasearch.errors import ScheduleError


def decoder_of(model) -> nn.Module:
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    if not isinstance(getattr(decoder, "layers", None), nn.ModuleList):
        raise ScheduleError(f"{type(model).__name__}: cannot find its list of decoder layers")
    return decoder
