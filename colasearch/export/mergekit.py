"""A mergekit ``passthrough`` config that stacks the same layers as a layer-level schedule."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from colasearch.errors import ColasearchError, ScheduleError
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


# colasearch's model aliases, as the Hugging Face repositories mergekit can fetch. The embedded SmolLM2 is a
# dequantized Q4_1 GGUF of this repository: the repository's weights are not the ones colasearch scored.
HUB_SOURCES = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}

# The dtypes of a GGUF's converted copy, most faithful first: float32 holds the dequantized weights exactly.
_COPY_DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class MergekitSource:
    """What the config names for mergekit to read, and, when those are not the weights colasearch
    evaluated, a plain sentence saying so (written into the config and shown by ``export``)."""

    model: str
    caveat: str | None = None


def _converted_copy(gguf: Path) -> Path | None:
    """The folder of ``gguf``'s dequantized weights that colasearch loaded and scored, if it is cached."""
    from colasearch.model_cache import content_key, converted_dir

    key = content_key(gguf)
    for dtype in _COPY_DTYPES:
        folder = converted_dir(gguf, dtype, key)
        if (folder / "config.json").is_file():
            return folder
    return None


def _check_local_folder(folder: Path, schedule: Schedule, force: bool) -> None:
    """A local folder must be the full model the schedule was searched on: mergekit's layer ranges index it."""
    from colasearch.export.checkpoint import SCHEDULE_FILENAME

    if not (folder / "config.json").is_file():
        raise ScheduleError(f"{folder} has no config.json: name a Hugging Face model folder for mergekit")
    applied = folder / SCHEDULE_FILENAME
    if applied.is_file():
        chain = Schedule.load(applied)
        if [entry.layer for entry in chain.layers] != list(range(len(chain.layers))) or chain.experts is not None:
            raise ScheduleError(f"{folder} holds a scheduled checkpoint ({chain.chain}), not the full model "
                                "whose layers the config's ranges count")
    expected = schedule.model.fingerprint
    if expected is not None and not force:
        from transformers import AutoConfig

        from colasearch.fingerprint import fingerprint_of_config

        actual = fingerprint_of_config(AutoConfig.from_pretrained(folder))
        if actual != expected:
            raise ScheduleError(f"{folder} is not the model the schedule was searched on (its fingerprint differs); "
                                "pass --force to name it anyway")


def mergekit_source(schedule: Schedule, model: str | None = None, force: bool = False) -> MergekitSource:
    """The weights mergekit should stack: those colasearch evaluated wherever they are on this machine.

    A GGUF model (the embedded alias, a ``.gguf`` file) was searched as its dequantized copy in colasearch's
    cache, so that folder is named. Without a copy, the alias falls back to its hub repository with a caveat,
    and a ``.gguf`` file, which mergekit cannot read, is refused.
    """
    from colasearch.loading import _EMBEDDED, gguf_of

    name = model or schedule.model.name
    if not name:
        raise ScheduleError("a mergekit config needs the model's name or path: pass --model")
    if name in _EMBEDDED or name.endswith(".gguf"):
        try:
            gguf = gguf_of(name)
        except ColasearchError:
            gguf = None
        copy = _converted_copy(gguf) if gguf is not None else None
        if copy is not None:
            return MergekitSource(str(copy))
        if name not in HUB_SOURCES:
            raise ScheduleError(f"mergekit cannot read a GGUF file, and {name} has no converted copy here: load it "
                                "once with colasearch (run, eval) and export again, or pass --model FOLDER")
        return MergekitSource(HUB_SOURCES[name], caveat=_hub_caveat(name))
    if HUB_SOURCES.get(schedule.model.name) == name:  # the repository named on purpose: still not what was scored
        return MergekitSource(name, caveat=_hub_caveat(schedule.model.name))
    folder = Path(name).expanduser()
    if folder.is_dir():
        _check_local_folder(folder, schedule, force)
    return MergekitSource(name)


def _hub_caveat(alias: str) -> str:
    return (f"{HUB_SOURCES[alias]} is not the model that was searched and scored: colasearch evaluated the "
            f"dequantized GGUF of {alias}, whose weights differ; load {alias} once with colasearch (its converted "
            "copy is then named here) or pass --model with a folder of the evaluated weights")


def mergekit_config(schedule: Schedule, model: str | None = None, dtype: str | None = None,
                    source: MergekitSource | None = None) -> dict[str, Any]:
    source = source or mergekit_source(schedule, model)
    config: dict[str, Any] = {
        "slices": [{"sources": [{"model": source.model, "layer_range": [start, end]}]}
                   for start, end in layer_ranges(schedule)],
        "merge_method": "passthrough",
    }
    if dtype:
        config["dtype"] = dtype
    return config


def write_mergekit(schedule: Schedule, path: str | os.PathLike, model: str | None = None, dtype: str | None = None,
                   source: MergekitSource | None = None) -> Path:
    source = source or mergekit_source(schedule, model)
    config = mergekit_config(schedule, dtype=dtype, source=source)
    header = f"# colasearch schedule {schedule.key}: {schedule.chain}\n"
    if source.caveat:
        header += "".join(f"# {line}\n" for line in textwrap.wrap(f"WARNING: {source.caveat}.", 100))
    return write_text_atomically(path, header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None))
