"""Checks made before any work: a setting or output path a run would only trip over after minutes of search
is refused at once, as one line (the CLI: exit 2), and nothing is written. The library's run pipeline and the
CLI's commands share them."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path

from colasearch.errors import ColasearchError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _probe_folder(folder: Path, path: Path, flag: str) -> None:
    """Creating (and at once removing) a file is the one reliable test: permissions, ACLs, read-only mounts."""
    if not folder.is_dir():
        raise ColasearchError(f"{flag} {path}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ColasearchError(f"{flag} {path}: cannot write in {folder}: {error.strerror or error}") from None


def check_output_file(path: Path | str | None, flag: str) -> None:
    """``path`` can be written as a file: not a folder, and its nearest existing folder is writable.
    Nothing is created (missing parent folders are made only when the result is written)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ColasearchError(f"{flag} {path} is a folder; give a file name to write")
    parent = _nearest_existing(path.parent) if not path.exists() else path.parent
    _probe_folder(parent, path, flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise ColasearchError(f"{flag} {path}: the file is not writable")


def check_output_folder(path: Path | str, flag: str) -> None:
    """``path`` is, or can become, a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ColasearchError(f"{flag} {path} is a file; give a folder")
    _probe_folder(_nearest_existing(path), path, flag)


def check_at_least(value: int | None, minimum: int, flag: str) -> None:
    if value is not None and value < minimum:
        raise ColasearchError(f"{flag} must be at least {minimum}, got {value}")


def _option_defaults(cls) -> dict[str, object]:
    """Keyword options a searcher class takes, with their defaults, along its whole class chain."""
    defaults: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if parameter.kind is parameter.KEYWORD_ONLY or (
                    parameter.kind is parameter.POSITIONAL_OR_KEYWORD and parameter.default is not parameter.empty):
                defaults[name] = parameter.default
    return defaults


def _fits(default, value) -> bool:
    if default is None or default is inspect.Parameter.empty:
        return True  # nothing to go by; the searcher checks it
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def check_searcher_options(searcher: str, options: dict) -> dict:
    """Unknown keys and values of the wrong type (``exploration=abc``) fail before the model loads,
    judged by the searcher's own keyword defaults. Returns the options, a number YAML read as text
    (``1e-3``) made a number where the default is one."""
    from colasearch.searchers.base import SearcherError, searcher_class

    defaults = _option_defaults(searcher_class(searcher))
    checked = {}
    for key, value in options.items():
        if key in ("space", "objective", "seed", "budget", "self", "options"):
            raise SearcherError(f"searcher option {key!r} is set by colasearch itself (use the flag)")
        if key not in defaults:
            known = ", ".join(sorted(name for name in defaults if name not in ("seed", "budget"))) or "none"
            raise SearcherError(f"searcher {searcher!r} has no option {key!r} (its options: {known})"[:280])
        default = defaults[key]
        if isinstance(default, float) and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if not _fits(default, value):
            raise SearcherError(f"searcher option {key}={str(value)[:40]!r} must be of type "
                                f"{type(default).__name__}, like its default {default!r}")
        checked[key] = value
    return checked


def check_run_outputs(out: Path, storage: str, resume: bool, overwrite: bool) -> None:
    """``colasearch run``: the schedule and the journal can be written, and an existing schedule is
    replaced only when asked to (``--resume`` continues its run, ``--overwrite`` starts afresh)."""
    if resume and overwrite:
        raise ColasearchError("--resume and --overwrite exclude each other: continue the run, or start it afresh")
    check_output_file(out, "--out")
    if "://" not in storage:
        check_output_file(storage, "--storage")
    if Path(out).exists() and not resume and not overwrite:
        raise ColasearchError(f"--out {out} exists; pass --resume to continue its run, or --overwrite to replace it")


def check_measured_workers(workers: int, gpus_per_worker: float) -> None:
    """``--objective measured`` times every candidate where it is scored: workers sharing one CPU or one GPU
    would time each other's work, so each must have a device of its own."""
    shared_cpu = workers > 1 and gpus_per_worker <= 0
    shared_gpu = workers > 1 and 0 < gpus_per_worker < 1
    if shared_cpu or shared_gpu:
        where = "CPU" if shared_cpu else "GPU"
        raise ColasearchError(f"--objective measured times every candidate on its worker, and {workers} workers "
                              f"sharing one {where} would time each other's work: use --workers 1 (or 0), or a "
                              "whole GPU per worker")
