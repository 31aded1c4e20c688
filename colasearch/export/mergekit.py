"""A mergekit ``passthrough`` config that stacks the same layers as a layer-level schedule."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from colasearch.errors import ScheduleError
from colasearch.export.support import require_layer_level
from colasearch.files import write_text_atomically
from colasearch.schedule import Schedule


def layer_ranges(schedule: Schedule) -> list[tuple[int, int]]:
    """The chain as the fewest half-open ranges ``[start, end)`` of consecutive ascending layers."""
    require_layer_level(schedule, "a mergekit config")
    ranges: list[list[int]] = []
    for entry in schedule.layers:
        if ranges and entry.layer == ranges[-1][1]:
            ranges[-1][1] += 1
        else:
            ranges.append([entry.layer, entry.layer + 1])
    return [(start, end) for start, end in ranges]


# colasearch's model aliases, as the Hugging Face repositories mergekit can fetch. The embedded
# SmolLM2 is a dequantized Q4_1 GGUF of this repository, so the weights differ slightly.
HUB_SOURCES = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def mergekit_config(schedule: Schedule, model: str | None = None, dtype: str | None = None) -> dict[str, Any]:
    source = model or schedule.model.name
    source = HUB_SOURCES.get(source, source)
    if not source:
        raise ScheduleError("a mergekit config needs the model's name or path: pass --model")
    config: dict[str, Any] = {
        "slices": [{"sources": [{"model": source, "layer_range": [start, end]}]} for start, end in layer_ranges(schedule)],
        "merge_method": "passthrough",
    }
    if dtype:
        config["dtype"] = dtype
    return config


def write_mergekit(schedule: Schedule, path: str | os.PathLike, model: str | None = None, dtype: str | None = None) -> Path:
    config = mergekit_config(schedule, model=model, dtype=dtype)
    header = f"# colasearch schedule {schedule.key}: {schedule.chain}\n"
    return write_text_atomically(path, header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None))
