"""Materialize a layer-level schedule as an ordinary checkpoint any runtime can load.

The executed chain becomes the model's layer list: skipped layers are dropped, repeated ones copied,
all renumbered 0..n-1. Config fields that describe layers one by one follow their layer.
``AutoModelForCausalLM.from_pretrained(DIR)`` then runs the schedule with no colasearch installed.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from colasearch.decoder import decoder_of
from colasearch.errors import ColasearchError
from colasearch.export.support import require_layer_level
from colasearch.files import WriteFailed, fsync_path, fsync_tree, readable_mode, write_failed
from colasearch.fingerprint import text_config
from colasearch.runtime import apply_schedule, applied_schedule, family_of, restore
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


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system or the
    filesystem cannot, and nothing moved."""
    rename = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform.startswith("linux") else None
    if rename is None:
        return False
    rename.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if rename(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Put the finished folder at ``out_dir``. An old one is swapped out in one rename where the system can;
    elsewhere it is moved aside, and moved back if the new folder cannot take its place. Either way there
    is always a complete folder, old or new, to find."""
    if not os.path.lexists(out_dir):
        os.replace(staging, out_dir)
    elif _exchange(staging, out_dir):
        _remove(staging)  # holds the old folder now
    else:
        aside = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old."))
        os.replace(out_dir, aside / out_dir.name)
        try:
            os.replace(staging, out_dir)
        except BaseException:
            os.replace(aside / out_dir.name, out_dir)
            shutil.rmtree(aside, ignore_errors=True)
            raise
        shutil.rmtree(aside, ignore_errors=True)


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
    existed = os.path.lexists(out_dir)
    try:
        try:
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial."))
        except OSError as failure:
            raise write_failed(out_dir, failure, existed) from None
        try:
            with _materialized(model, schedule):
                model.save_pretrained(staging, max_shard_size=max_shard_size)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
            # A plain write: the staging folder as a whole is what appears at once, synced below.
            (staging / SCHEDULE_FILENAME).write_text(schedule.to_yaml())
            # Writers such as safetensors create their files 0600; the checkpoint is read by whoever serves it.
            for written in staging.rglob("*"):
                os.chmod(written, readable_mode(directory=written.is_dir()))
            os.chmod(staging, readable_mode(directory=True))
            fsync_tree(staging)  # on the disk before it takes the name, so a power cut leaves old or new
            _move_into_place(staging, out_dir)
        except OSError as failure:  # a full disk, a read-only folder: one line, and what is still there
            shutil.rmtree(staging, ignore_errors=True)
            raise write_failed(out_dir, failure, existed) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        if previously_applied is not None:
            apply_schedule(model, previously_applied, force=True)
    try:
        fsync_path(out_dir.parent)  # the new name itself survives a power cut
    except OSError as failure:
        raise WriteFailed(f"wrote {out_dir} but cannot flush its folder to the disk: {failure.strerror or failure}") from None
    return out_dir
