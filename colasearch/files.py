"""Reading and writing the files a user hands over or gets back: YAML in, atomic text out, safe names."""

from __future__ import annotations

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


def write_atomically(path: str | os.PathLike, write) -> Path:
    """``write(tmp_path)`` fills a temporary file next to ``path``, which then replaces ``path`` at once: a reader
    never sees a half-written file. The file gets the mode a plain ``open`` would give (mkstemp's is 0600)."""
    path = Path(path)
    if path.is_dir():
        raise ColasearchError(f"{path} is a folder; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, readable_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """A reader never sees a half-written file."""
    def write(tmp):
        with open(tmp, "w") as out:
            out.write(text)

    return write_atomically(path, write)


def slug(text: str) -> str:
    """``text`` as a file name: runs of anything but letters, digits, ``_``, ``.`` and ``-`` become one ``-``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")
