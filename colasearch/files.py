"""Reading and writing the files a user hands over or gets back: YAML in, atomic text out, safe names."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml

from colasearch.errors import ColasearchError


def read_yaml(path: str | os.PathLike, what: str, error: type[ColasearchError] = ColasearchError):
    """The parsed YAML of ``path``; an unreadable or malformed file is one ``error`` line naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as failure:
        raise error(f"{path}: cannot read {what}: {failure.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as failure:
        mark = getattr(failure, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(failure, "problem", None) or "syntax error"
        raise error(f"{path}: malformed YAML{where}: {problem}") from None


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


def slug(text: str) -> str:
    """``text`` as a file name: runs of anything but letters, digits, ``_``, ``.`` and ``-`` become one ``-``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")
