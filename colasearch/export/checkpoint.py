"""Materialize a layer-level schedule as an ordinary checkpoint any runtime can load.

The executed chain becomes the model's layer list: skipped layers are dropped, repeated ones copied,
all renumbered 0..n-1. Config fields that describe layers one by one follow their layer.
``AutoModelForCausalLM.from_pretrained(DIR)`` then runs the schedule with no colasearch installed.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from colasearch.errors import ColasearchError
from colasearch.export.support import require_layer_level
from colasearch.files import readable_mode
from colasearch.fingerprint import text_config
from colasearch.runtime import apply_schedule, applied_schedule, decoder_of, family_of, restore
from colasearch.schedule import Schedule

SCHEDULE_FILENAME = "colasearch_schedule.yaml"

# Config fields holding one value per layer, in layer order.
PER_LAYER_FIELDS = ("layer_types", "no_rope_layers")


def _dense_layers(config, num_layers: int) -> set[int] | None:
    """Layers whose MLP is dense in Qwen-MoE style configs (mlp_only_layers / decoder_sparse_step)."""
    if not hasattr(config, "mlp_only_layers") and not hasattr(config, "decoder_sparse_step"):
        return None
    only = set(getattr(config, "mlp_only_layers", None) or [])
    step = getattr(config, "decoder_sparse_step", 1) or 1
    return {index for index in range(num_layers) if index in only or (index + 1) % step != 0}


def materialized_config_fields(config, schedule: Schedule) -> dict[str, Any]:
    """New values of the config fields that depend on the layer list, for the chain as the new layers."""
    sources = [entry.layer for entry in schedule.layers]
    num_layers = config.num_hidden_layers
    fields: dict[str, Any] = {"num_hidden_layers": len(sources)}
    for name in PER_LAYER_FIELDS:
        values = getattr(config, name, None)
        if isinstance(values, (list, tuple)) and len(values) == num_layers:
            fields[name] = [values[source] for source in sources]
    dense = _dense_layers(config, num_layers)
    if dense is not None:
        fields["mlp_only_layers"] = [position for position, source in enumerate(sources) if source in dense]
        fields["decoder_sparse_step"] = 1
    types = fields.get("layer_types")
    if types is not None and getattr(config, "max_window_layers", None) is not None:
        # Qwen2-style runtimes that ignore layer_types slide every layer from max_window_layers on.
        leading_full = next((i for i, kind in enumerate(types) if kind != "full_attention"), len(types))
        if all(kind != "full_attention" for kind in types[leading_full:]):
            fields["max_window_layers"] = leading_full
    return fields


def _chain_modules(originals: nn.ModuleList, schedule: Schedule) -> nn.ModuleList:
    """The chain's layers; a repeat is a deep copy, because a checkpoint cannot share one tensor twice."""
    seen: set[int] = set()
    modules = []
    for entry in schedule.layers:
        layer = originals[entry.layer]
        modules.append(copy.deepcopy(layer) if entry.layer in seen else layer)
        seen.add(entry.layer)
    return nn.ModuleList(modules)


def check_checkpoint_target(out_dir: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty folder (or a file) unless asked to; callable before the model loads."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise ColasearchError(f"{out_dir} already exists and is not empty; pass --overwrite to replace it")


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Swap the finished folder in; an old one is removed only after the new one is complete."""
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old."))
        os.replace(out_dir, old / out_dir.name)
        os.replace(staging, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out_dir)


@contextlib.contextmanager
def _materialized(model, schedule: Schedule):
    """Within the block, the model's layer list and config are the chain's; afterwards, exactly as before."""
    decoder = decoder_of(model)
    config = text_config(model.config)
    originals = decoder.layers
    new_fields = materialized_config_fields(config, schedule)
    saved_fields = {name: getattr(config, name) for name in new_fields if hasattr(config, name)}
    decoder.layers = _chain_modules(originals, schedule)
    try:
        for name, value in new_fields.items():
            setattr(config, name, value)
        yield model
    finally:
        decoder.layers = originals
        for name in new_fields:
            if name in saved_fields:
                setattr(config, name, saved_fields[name])
            elif hasattr(config, name):
                delattr(config, name)


def export_checkpoint(model, schedule: Schedule, out_dir: str | os.PathLike, tokenizer=None,
                      force: bool = False, overwrite: bool = False, max_shard_size: str = "5GB") -> Path:
    """Write ``schedule`` applied to ``model`` as safetensors + config (+ tokenizer) into ``out_dir``.

    ``model`` is left as it was, including a schedule applied to it at the time.
    """
    require_layer_level(schedule, "a checkpoint")
    family_of(model)
    out_dir = Path(out_dir)
    check_checkpoint_target(out_dir, overwrite)
    schedule.check_fits(model, force=force)

    previously_applied = applied_schedule(model)
    restore(model)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial."))
        try:
            with _materialized(model, schedule):
                model.save_pretrained(staging, max_shard_size=max_shard_size)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
            schedule.save(staging / SCHEDULE_FILENAME)
            # Writers such as safetensors create their files 0600; the checkpoint is read by whoever serves it.
            for written in staging.rglob("*"):
                os.chmod(written, readable_mode(directory=written.is_dir()))
            os.chmod(staging, readable_mode(directory=True))
            _move_into_place(staging, out_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        if previously_applied is not None:
            apply_schedule(model, previously_applied, force=True)
    return out_dir
