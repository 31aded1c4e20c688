"""Reading and writing the files a user hands over or gets back: YAML in, atomic text out, safe names."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

import yaml

from colasearch.errors import ColasearchError


# A user's YAML (schedule, sweep) is a few kilobytes; these bounds keep a hostile file (a huge one, or a
# few hundred bytes of nested aliases that expand exponentially) from costing memory or time.
MAX_YAML_BYTES = 1 << 20
MAX_YAML_NODES = 200_000

_LOADER_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses a 1 MiB file in a blink


class YamlUnreadable(ColasearchError):
    """Why a YAML file cannot be used, without its path: ``problem`` and, for syntax errors, ``line``."""

    def __init__(self, problem: str, line: int | None = None):
        super().__init__(problem)
        self.problem = problem
        self.line = line


def _expanded_nodes(root, limit: int) -> int:
    """How many nodes the document has once every alias is expanded, counted without expanding (shared
    nodes are counted once per use, from memo); stops past ``limit``. A node inside itself is refused."""
    sizes: dict[int, int] = {}
    stack = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        if not children_done:
            if key in open_nodes:
                raise YamlUnreadable("an alias refers to the node it is part of (recursive structure)")
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        open_nodes.discard(key)
        sizes[key] = min(limit + 1, 1 + sum(sizes[id(child)] for child in children))
        if sizes[key] > limit:
            return sizes[key]
    return sizes[id(root)]


class _BoundedLoader(_LOADER_BASE):
    """``yaml.safe_load`` that refuses a document expanding past ``MAX_YAML_NODES`` before building it."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None and _expanded_nodes(node, MAX_YAML_NODES) > MAX_YAML_NODES:
            raise YamlUnreadable(f"holds more than {MAX_YAML_NODES} values once its aliases are expanded")
        return node


def load_yaml_bounded(path: str | os.PathLike, max_bytes: int = MAX_YAML_BYTES):
    """The parsed YAML of ``path`` within bounded memory and time; ``YamlUnreadable`` says why not."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as failure:
        raise YamlUnreadable(f"cannot read the file: {failure.strerror or failure}") from None
    if len(raw) > max_bytes:
        raise YamlUnreadable(f"the file is larger than {max_bytes // 1024} KiB; not a file colasearch wrote")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as failure:
        raise YamlUnreadable(f"not UTF-8 text (byte {failure.start} cannot be decoded)") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as failure:
        mark = getattr(failure, "problem_mark", None)
        problem = getattr(failure, "problem", None) or "syntax error"
        raise YamlUnreadable(f"malformed YAML: {problem}", None if mark is None else mark.line + 1) from None
    except RecursionError:
        raise YamlUnreadable("nested too deeply") from None


def read_yaml(path: str | os.PathLike, what: str, error: type[ColasearchError] = ColasearchError,
              max_bytes: int = MAX_YAML_BYTES):
    """The parsed YAML of ``path``; an unreadable, oversized or malformed file is one ``error`` line naming it."""
    try:
        return load_yaml_bounded(path, max_bytes)
    except YamlUnreadable as failure:
        if failure.line is not None:
            raise error(f"{path}: {failure.problem.replace('malformed YAML', f'malformed YAML at line {failure.line}')}") from None
        problem = failure.problem.replace("cannot read the file", f"cannot read {what}")
        raise error(f"{path}: {problem}") from None


def readable_mode(directory: bool = False) -> int:
    """The mode a plainly created file or folder gets under the current umask (mkstemp's is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


class WriteFailed(ColasearchError):
    """A file the user asked for could not be written (full disk, no permission); what was there before is intact."""


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file, or a folder's list of names, to the disk: without it a power cut soon after a rename can
    leave the new name pointing at an empty file. Filesystems that cannot sync a folder are let be."""
    descriptor = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0))
    try:
        os.fsync(descriptor)
    except OSError as failure:
        if failure.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def fsync_tree(folder: str | os.PathLike) -> None:
    """fsync every file and folder under ``folder``, the folder itself last."""
    for written in sorted(Path(folder).rglob("*"), key=lambda item: -len(item.parts)):
        fsync_path(written)
    fsync_path(folder)


def kept_note(path: Path, existed: bool) -> str:
    return f"the previous {path.name} is left as it was" if existed else "nothing was written"


def write_failed(path: Path, failure: OSError, existed: bool) -> WriteFailed:
    """One line: which output, why (the OS's words), and what is still there."""
    return WriteFailed(f"cannot write {path}: {failure.strerror or failure}; {kept_note(path, existed)}")


def write_atomically(path: str | os.PathLike, write) -> Path:
    """``write(tmp_path)`` fills a temporary file next to ``path``, which then replaces ``path`` at once: a reader
    never sees a half-written file, and once this returns the new file is on the disk (file and folder synced).
    The file gets the mode a plain ``open`` would give (mkstemp's is 0600). A failing disk (full, read-only,
    no permission) raises ``WriteFailed``, one line, with ``path`` as it was."""
    path = Path(path)
    if path.is_dir():
        raise ColasearchError(f"{path} is a folder; give a file name to write")
    existed = path.exists()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
        write(tmp)
        os.chmod(tmp, readable_mode())
        fsync_path(tmp)
        os.replace(tmp, path)
    except OSError as failure:
        _discard(tmp)
        raise write_failed(path, failure, existed) from None
    except BaseException:
        _discard(tmp)
        raise
    try:
        fsync_path(path.parent)
    except OSError as failure:
        raise WriteFailed(f"wrote {path} but cannot flush its folder to the disk: {failure.strerror or failure}") from None
    return path


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """A reader never sees a half-written file."""
    def write(tmp):
        with open(tmp, "w") as out:
            out.write(text)

    return write_atomically(path, write)


# Characters that make a spreadsheet read a cell as a formula (OWASP's list for CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell that a spreadsheet shows as text: text starting like a formula gets a leading ``'``.
    Numbers, negative ones included, stay numbers; only text (model and task names, errors) is quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def slug(text: str) -> str:
    """``text`` as a file name: runs of anything but letters, digits, ``_``, ``.`` and ``-`` become one ``-``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")
