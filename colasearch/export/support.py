"""What every export shares: refusing what a plain checkpoint cannot express, and atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from colasearch.errors import ColasearchError, ScheduleError
from colasearch.schedule import Schedule


def layer_level_problems(schedule: Schedule) -> list[str]:
    """Parts of a schedule that only colasearch's runtime can execute, each named."""
    problems = []
    partial = [f"{entry} (position {position})" for position, entry in enumerate(schedule.layers) if entry.run != "all"]
    if partial:
        problems.append("sub-block entries " + ", ".join(partial))
    if schedule.experts is not None:
        keys = ", ".join(sorted(schedule.experts.thresholds, key=lambda name: (len(name), name)))
        problems.append(f"expert thresholds (experts.thresholds: {keys})" if keys else "the 'experts' section")
    return problems


def require_layer_level(schedule: Schedule, target: str) -> None:
    problems = layer_level_problems(schedule)
    if problems:
        raise ScheduleError(
            f"cannot export as {target}: {'; '.join(problems)} have no equivalent outside colasearch's runtime"
        )


def readable_mode(directory: bool = False) -> int:
    """The mode a plainly created file or folder gets under the current umask (mkstemp's is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """A reader never sees a half-written file."""
    path = Path(path)
    if path.is_dir():
        raise ColasearchError(f"{path} is a folder; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(tmp, readable_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
