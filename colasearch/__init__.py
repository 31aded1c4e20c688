"""colasearch: find, run and ship layer schedules for Hugging Face causal LMs.

The loader side imports neither Ray nor Optuna, so a serving process pays only for what it uses; a search
(:func:`find_schedule` with a :class:`RunConfig`) imports them when it runs.
"""

from colasearch.errors import ColasearchError, ModelNotFoundError, ScheduleError, TaskError
from colasearch.fingerprint import Fingerprint, fingerprint
from colasearch.loading import load_model
from colasearch.pipeline import RunResult, find_schedule
from colasearch.run_config import RunConfig
from colasearch.runtime import apply_schedule, restore, scheduled
from colasearch.schedule import LayerEntry, Schedule

# MoE expert skipping plugs into the runtime's forward-patch hook when imported; here, so that every
# ``apply_schedule`` honours a schedule's ``experts`` section whichever module the caller imported.
import colasearch.moe  # noqa: F401

from colasearch.version import __version__

__all__ = [
    "ColasearchError", "Fingerprint", "LayerEntry", "ModelNotFoundError", "RunConfig", "RunResult", "Schedule",
    "ScheduleError", "TaskError", "apply_schedule", "find_schedule", "fingerprint", "load_model", "restore", "scheduled",
    "__version__",
]
