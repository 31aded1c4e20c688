"""Every finished evaluation is one COMPLETE trial of an Optuna study (journal file or RDB URL).

Trials are written only once an evaluation has finished, so a killed run leaves no half-record,
and the study opens in optuna-dashboard: values are the objective's values, and the user attributes
carry the chain, the schedule and the full result.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna

from colasearch.errors import ColasearchError
from colasearch.results import EvalResult
from colasearch.schedule import Schedule


class StorageError(ColasearchError):
    """A study storage that cannot be opened, or a run that exists but was not asked to resume."""


def open_storage(location: str | Path):
    """A path is a journal file; anything with ``://`` is an RDB URL (e.g. ``sqlite:///runs.db``)."""
    location = str(location)
    try:
        if "://" in location:
            return optuna.storages.RDBStorage(location)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        Path(location).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(location))
    except Exception as error:  # noqa: BLE001  (SQLAlchemy and backends raise their own types)
        raise StorageError(f"cannot open study storage {location!r}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None


def _finite(value: float) -> float:
    # Optuna's storages reject or mangle infinities; a finite stand-in keeps the ordering.
    return value if math.isfinite(value) else math.copysign(1e300, value)


class RunStore:
    """The durable record of one run: study ``name`` in ``storage``."""

    def __init__(self, storage: str | Path | None, name: str, directions, resume: bool = False):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.location = None if storage is None else str(storage)
        self.storage = optuna.storages.InMemoryStorage() if storage is None else open_storage(storage)
        self.name = name
        existing = {summary.study_name for summary in optuna.get_all_study_summaries(self.storage)}
        if name in existing:
            self.study = optuna.load_study(study_name=name, storage=self.storage)
            if self.study.trials and not resume:
                raise StorageError(
                    f"{self.location} already holds {len(self.study.trials)} evaluations of this run; "
                    "pass --resume to continue it, or choose another --storage"
                )
        else:
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
