"""Every finished evaluation is one COMPLETE trial of an Optuna study (journal file or RDB URL).

Trials are written only once an evaluation has finished, so a killed run leaves no half-record,
and the study opens in optuna-dashboard: values are the objective's values, and the user attributes
carry the chain, the schedule and the full result.

A journal is one JSON object per line. A crash mid-write can leave a torn last line, which Optuna
would glue the next record onto; a writer therefore repairs the tail before it opens the journal,
and holds an exclusive lock on it, so two runs never write (and evaluate) the same study at once.
"""

from __future__ import annotations

import json
import math
import os
import sys
import weakref
from pathlib import Path

import optuna

from colasearch.errors import ColasearchError
from colasearch.results import EvalResult
from colasearch.schedule import Schedule


class StorageError(ColasearchError):
    """A study storage that cannot be opened, or a run that exists but was not asked to resume."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _set_aside(path: Path, tail: bytes) -> Path:
    """Keep the torn bytes next to the journal (never silently dropped), under a name not yet taken."""
    for number in range(1, 1000):
        aside = path.with_name(f"{path.name}.torn-{number}")
        try:
            with open(aside, "xb") as handle:
                handle.write(tail)
            return aside
        except FileExistsError:
            continue
    raise StorageError(f"{path}: too many torn tails set aside next to it; remove {path.name}.torn-*")


def check_journal(path: str | Path, repair: bool = False) -> str | None:
    """Refuse a journal with a garbled record, naming its line. A torn last line (no newline: a crash
    mid-write) is harmless to a reader; with ``repair`` it is completed when it holds a whole record,
    else moved aside into ``PATH.torn-N``. Returns a one-line warning when something was repaired."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StorageError(f"cannot read journal {path}: {error.strerror}") from None
    complete_end = data.rfind(b"\n") + 1
    lines = data[:complete_end].split(b"\n")[:-1]
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            why = getattr(error, "msg", "not UTF-8")
            raise StorageError(f"{path}:{number}: garbled journal record ({why}); the journal cannot be read "
                               "past it") from None
        if not isinstance(record, dict) or "op_code" not in record:
            raise StorageError(f"{path}:{number}: not an Optuna journal record")
    tail = data[complete_end:]
    if not tail or not repair:
        return None
    try:
        whole = isinstance(json.loads(tail), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        whole = False
    if whole:  # only the newline was lost: the record is complete, keep it
        with open(path, "ab") as handle:
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return f"{path}: completed its last record, whose newline a crash had cut off"
    aside = _set_aside(path, tail)
    with open(path, "r+b") as handle:
        handle.truncate(complete_end)
        handle.flush()
        os.fsync(handle.fileno())
    return (f"{path}: its last line was torn by a crash mid-write; moved those {len(tail)} bytes to {aside.name} "
            f"and kept the {len(lines)} complete records")


def open_storage(location: str | Path, repair: bool = False):
    """A path is a journal file; anything with ``://`` is an RDB URL (e.g. ``sqlite:///runs.db``).
    ``repair`` (writers only) fixes a torn last line first and prints a one-line warning."""
    location = str(location)
    if "://" not in location:
        warning = check_journal(location, repair=repair)
        if warning:
            sys.stderr.write(f"colasearch: warning: {warning}\n")
    try:
        if "://" in location:
            return optuna.storages.RDBStorage(location)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        Path(location).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(location))
    except Exception as error:  # noqa: BLE001  (SQLAlchemy and backends raise their own types)
        raise StorageError(f"cannot open study storage {location!r}: {_first_line(error)}") from None


# -- one writer per journal --------------------------------------------------------------------

# Locks held by this process: re-entrant here (a command may open a study twice), exclusive across
# processes. flock goes with the process, so a killed run never leaves a stale lock behind.
_HELD: dict[str, list] = {}


def _lock_journal(path: Path):
    """Take the journal's writer lock (creating the journal, as Optuna would); released by the returned
    callable. Another process holding it is a clear error: a second run would duplicate evaluations."""
    import fcntl

    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key][1] += 1
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise StorageError(f"cannot open journal {path}: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            raise StorageError(f"{path} is in use by another colasearch run; wait for it to finish "
                               "(or give this run another --out or --storage)") from None
        _HELD[key] = [descriptor, 1]

    def release():
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _HELD[key]
            os.close(held[0])  # closing the descriptor drops the flock

    return release


# -- which run a study is ----------------------------------------------------------------------

# The parts of a colasearch study name (see colasearch.engine.session.study_name), for naming differences.
_NAME_PARTS = ("model", "task", "searcher", "objective", "target", "seed", "split (search/held-out/seed/confirmation)", "options")


def _parts(name: str) -> list[str]:
    pieces = name.split("|")
    if len(pieces) != 9 or pieces[0] != "colasearch":
        return []
    return [piece.partition("=")[2] if "=" in piece and index in (5, 6, 7) else piece
            for index, piece in enumerate(pieces[1:], start=1)]


def _difference(stored: str, wanted: str) -> list[str]:
    old, new = _parts(stored), _parts(wanted)
    if not old or not new:
        return ["study name"]
    return [f"{part} (stored {before!r}, now {after!r})"
            for part, before, after in zip(_NAME_PARTS, old, new) if before != after]


def _finite(value: float) -> float:
    # Optuna's storages reject or mangle infinities; a finite stand-in keeps the ordering.
    return value if math.isfinite(value) else math.copysign(1e300, value)


class RunStore:
    """The durable record of one run: study ``name`` in ``storage``.

    ``resume`` continues the study; it is an error when the storage holds only studies of other flags.
    ``overwrite`` starts the study afresh, dropping its stored evaluations.
    """

    def __init__(self, storage: str | Path | None, name: str, directions, resume: bool = False,
                 overwrite: bool = False):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.location = None if storage is None else str(storage)
        self.name = name
        release = _lock_journal(Path(storage)) if storage is not None and "://" not in str(storage) else None
        try:
            self.storage = optuna.storages.InMemoryStorage() if storage is None else open_storage(storage, repair=True)
            self._open(name, directions, resume, overwrite)
        except BaseException as error:
            if release is not None:
                release()
            if isinstance(error, ColasearchError) or not isinstance(error, Exception):
                raise
            raise StorageError(f"cannot read study storage {self.location!r}: {_first_line(error)}") from None
        # Held until close() or until the store is collected; a killed process drops it too.
        self._release = weakref.finalize(self, release) if release is not None else None

    def close(self) -> None:
        """Let another run write the journal; this store can still be read."""
        if self._release is not None:
            self._release()

    def _open(self, name: str, directions, resume: bool, overwrite: bool) -> None:
        existing = {summary.study_name for summary in optuna.get_all_study_summaries(self.storage)}
        if name in existing and overwrite:
            optuna.delete_study(study_name=name, storage=self.storage)
            existing.discard(name)
        if name in existing:
            self.study = optuna.load_study(study_name=name, storage=self.storage)
            if self.study.trials and not resume:
                raise StorageError(
                    f"{self.location} already holds {len(self.study.trials)} evaluations of this run; "
                    "pass --resume to continue it, or --overwrite to start it afresh"
                )
            return
        others = sorted(study for study in existing if study.startswith("colasearch|"))
        if resume and others:
            closest = min(others, key=lambda study: len(_difference(study, name)))
            raise StorageError(f"--resume: {self.location} holds a run with other flags: "
                               + "; ".join(_difference(closest, name))
                               + ". Resume with the stored flags, or drop --resume to start a new run")
        self.study = optuna.create_study(study_name=name, storage=self.storage, directions=list(directions))

    def records(self) -> list[tuple[Schedule, EvalResult]]:
        finished = [trial for trial in self.study.get_trials(deepcopy=False)
                    if trial.state == optuna.trial.TrialState.COMPLETE and "result" in trial.user_attrs]
        finished.sort(key=lambda trial: trial.number)
        return [(Schedule.from_dict(trial.user_attrs["schedule"], source=f"trial {trial.number}"),
                 EvalResult.from_dict(trial.user_attrs["result"])) for trial in finished]

    def add(self, schedule: Schedule, result: EvalResult, values, feasible: bool) -> None:
        trial = optuna.trial.create_trial(
            values=[_finite(float(value)) for value in values],
            user_attrs={"chain": schedule.chain, "key": schedule.key, "feasible": bool(feasible),
                        "ideal_speedup": result.ideal_speedup, "schedule": schedule.to_dict(),
                        "result": result.to_dict(),
                        # flat, so optuna-dashboard shows and sorts each metric as its own column
                        **{f"quality_{metric}": value for metric, value in result.quality.items()}},
        )
        self.study.add_trial(trial)

    def attribute(self, name: str, default=None):
        """A value stored with the study (e.g. a calibrated importance vector), or ``default``."""
        return self.study.user_attrs.get(name, default)

    def set_attribute(self, name: str, value) -> None:
        """Stored once with the study, JSON-serialisable, so a resumed run reads it back instead of recomputing."""
        self.study.set_user_attr(name, value)
