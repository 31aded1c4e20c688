"""Check a schedule file and report every problem at once, one line each.

``Schedule.load`` stops at the first problem, which suits a loader; a user fixing a file by hand
wants the whole list: syntax, version, schema, and (given a model) fingerprint and layer range.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from colasearch.errors import ScheduleError
from colasearch.fingerprint import Fingerprint, fingerprint
from colasearch.schedule import FORMAT_VERSION, LayerEntry, Schedule


def _where(location) -> str:
    return ".".join(str(part) for part in location) or "schedule"


def _pydantic_problems(error: ValidationError, prefix: tuple = ()) -> list[str]:
    return [f"{_where(prefix + tuple(item['loc']))}: {item['msg']}" for item in error.errors()]


def _entry_problems(position: int, entry: Any) -> list[str]:
    where = f"layers.{position}"
    if isinstance(entry, bool) or not isinstance(entry, (int, dict)):
        return [f"{where}: {entry!r} is neither a layer index nor a {{layer: i, run: attn|mlp}} mapping"]
    if isinstance(entry, int):
        return [] if entry >= 0 else [f"{where}: layer index {entry} is negative"]
    try:
        LayerEntry.model_validate(entry)
    except ValidationError as error:
        return _pydantic_problems(error, ("layers", position))
    return []


def _layers_problems(data: dict) -> list[str]:
    if "layers" not in data:
        return ["layers: missing (the executed chain of layer indices)"]
    layers = data["layers"]
    if not isinstance(layers, list):
        return [f"layers: must be a list of layer entries, got {type(layers).__name__}"]
    if not layers:
        return ["layers: the chain is empty (a schedule must run at least one layer)"]
    return [problem for position, entry in enumerate(layers) for problem in _entry_problems(position, entry)]


def _version_problems(data: dict) -> list[str]:
    if "colasearch_schedule" not in data:
        return ["colasearch_schedule: missing format version (expected colasearch_schedule: 1)"]
    version = data["colasearch_schedule"]
    if version != FORMAT_VERSION or isinstance(version, bool):
        return [f"colasearch_schedule: unsupported format version {version!r} (this colasearch reads version {FORMAT_VERSION})"]
    return []


def _other_field_problems(data: dict) -> list[str]:
    """Everything but the version and the chain, which are checked on their own with clearer messages."""
    rest = {**data, "colasearch_schedule": FORMAT_VERSION, "layers": [0]}
    try:
        Schedule.model_validate(rest)
    except ValidationError as error:
        return _pydantic_problems(error)
    return []


def _entries(data: dict) -> list[tuple[int, LayerEntry]]:
    layers = data.get("layers")
    if not isinstance(layers, list):
        return []
    entries = []
    for position, entry in enumerate(layers):
        if not _entry_problems(position, entry):
            entries.append((position, LayerEntry(layer=entry) if isinstance(entry, int) else LayerEntry.model_validate(entry)))
    return entries


def _declared_fingerprint(data: dict) -> Fingerprint | None:
    model = data.get("model")
    raw = model.get("fingerprint") if isinstance(model, dict) else None
    try:
        return Fingerprint.model_validate(raw) if raw is not None else None
    except ValidationError:
        return None  # already reported by the schema check


def _fit_problems(data: dict, actual: Fingerprint | None) -> list[str]:
    declared = _declared_fingerprint(data)
    problems = []
    if actual is not None and declared is not None and declared != actual:
        differences = [
            f"{field} {getattr(declared, field)!r} != {getattr(actual, field)!r}"
            for field in Fingerprint.model_fields
            if getattr(declared, field) != getattr(actual, field)
        ]
        problems.append("model.fingerprint: written for another model (schedule vs model: " + ", ".join(differences) + ")")
    reference = actual or declared
    experts = data.get("experts")
    importance = experts.get("importance") if isinstance(experts, dict) else None
    if reference is not None and isinstance(importance, list) and importance and len(importance) != reference.num_layers:
        problems.append(
            f"experts.importance: has {len(importance)} values, one per layer of a {reference.num_layers}-layer model"
        )
    if reference is not None:
        source = "the model" if actual is not None else "the schedule's fingerprint"
        limit = reference.num_layers
        problems += [
            f"layers.{position}: layer {entry.layer} is out of range: {source} has {limit} layers (0-{limit - 1})"
            for position, entry in _entries(data)
            if entry.layer >= limit
        ]
    return problems


def schedule_problems(data: Any, model=None, model_fingerprint: Fingerprint | None = None) -> list[str]:
    """All problems of an already parsed schedule document; an empty list means it is valid."""
    if not isinstance(data, dict):
        return [f"schedule: expected a mapping at the top level, got {type(data).__name__}"]
    actual = model_fingerprint or (fingerprint(model) if model is not None else None)
    return _version_problems(data) + _layers_problems(data) + _other_field_problems(data) + _fit_problems(data, actual)


def validate_schedule_file(path: str | os.PathLike, model=None, model_fingerprint: Fingerprint | None = None) -> list[str]:
    """All problems of a schedule file, one line each, ``line N: ...`` for syntax errors."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        return [f"cannot read the file: {error.strerror}"]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "yaml"
        return [f"{where}: malformed YAML: {getattr(error, 'problem', None) or 'syntax error'}"]
    return schedule_problems(data, model=model, model_fingerprint=model_fingerprint)


def load_valid(path: str | os.PathLike, model_fingerprint: Fingerprint | None = None) -> Schedule:
    """Load a schedule for a command, refusing it with its first problem (out-of-range layers included)."""
    problems = validate_schedule_file(path, model_fingerprint=model_fingerprint)
    if problems:
        more = f" (and {len(problems) - 1} more; see colasearch validate)" if len(problems) > 1 else ""
        raise ScheduleError(f"{path}: {problems[0]}{more}")
    return Schedule.load(path)


def fingerprint_of_model_name(name_or_path: str) -> Fingerprint:
    """A model's fingerprint from its config (a GGUF file: its header), so validating never loads weights."""
    from transformers import AutoConfig

    from colasearch.errors import ModelNotFoundError
    from colasearch.fingerprint import fingerprint_of_config, fingerprint_of_gguf
    from colasearch.loading import gguf_of, resolve_model_path

    gguf = gguf_of(name_or_path)
    if gguf is not None:
        return fingerprint_of_gguf(gguf)
    source, _ = resolve_model_path(name_or_path)
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelNotFoundError(f"cannot read the config of model {name_or_path!r}: {first_line}") from None
    return fingerprint_of_config(config)
