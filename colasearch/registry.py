"""One registry for every kind of plug-in: searchers, objectives and task kinds.

A registry maps names to objects (a searcher class, an objective class, a task loader). Built-ins are
listed as ``"module:attribute"`` paths and imported on first use, so that listing the names (a help text, an
error message) imports nothing heavy. Third-party packages add names through an entry-point group
(``colasearch.searchers``, ``colasearch.objectives``, ``colasearch.tasks``), read once, on first need; a
built-in name wins over an entry point of the same name, so that installing a package cannot silently
change what a built-in name runs. :meth:`Registry.register` adds an object in-process (tests, notebooks).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, Mapping, TypeVar

from colasearch.errors import ColasearchError

T = TypeVar("T")


class PluginError(ColasearchError):
    """An unknown plug-in name, or an installed plug-in that cannot be loaded."""


class Registry(Generic[T]):
    """Names of one kind of plug-in (``kind``, e.g. ``"searcher"``) and the objects they stand for.

    Reads like a mapping (``name in registry``, ``registry[name]``, iteration over sorted names, ``items()``);
    an unknown name raises ``error`` (a :class:`ColasearchError`, one line for the CLI) listing the known ones.
    """

    def __init__(self, kind: str, entry_point_group: str, builtins: Mapping[str, str],
                 error: type[ColasearchError] = PluginError):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.error = error
        self._builtin_names = frozenset(builtins)
        self._paths: dict[str, str] = dict(builtins)   # name -> "module:attribute", not yet imported
        self._loaded: dict[str, T] = {}
        self._from_entry_points: set[str] = set()
        self._scanned = False

    # -- names ------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every name, built-in, installed or registered, sorted."""
        self._scan()
        return sorted(set(self._paths) | set(self._loaded))

    def builtin_names(self) -> list[str]:
        """The names colasearch itself ships, sorted (no entry point or :meth:`register` among them)."""
        return sorted(self._builtin_names)

    def is_plugin(self, name: str) -> bool:
        """Whether ``name`` came from an installed package's entry point."""
        self._scan()
        return name in self._from_entry_points

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def keys(self) -> list[str]:
        return self.names()

    def items(self) -> list[tuple[str, T]]:
        return [(name, self.get(name)) for name in self.names()]

    # -- objects ----------------------------------------------------------------------------------

    def get(self, name: str) -> T:
        """The object registered as ``name``, imported on first use; an unknown name is a one-line error."""
        if name in self._loaded:
            return self._loaded[name]
        self._scan()
        if name not in self._paths:
            raise self.error(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        self._loaded[name] = self._import(name, self._paths[name])
        return self._loaded[name]

    __getitem__ = get

    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Add ``obj`` as ``name`` (replacing what the name stood for); without ``obj``, a decorator."""
        if obj is None:
            return lambda decorated: self.register(name, decorated)
        self._loaded[name] = obj
        return obj

    # -- internals --------------------------------------------------------------------------------

    def _scan(self) -> None:
        """Read the entry-point group once: an installed package's names join the built-in ones."""
        if self._scanned:
            return
        self._scanned = True
        for point in entry_points(group=self.entry_point_group):
            if point.name not in self._paths and point.name not in self._loaded:
                self._paths[point.name] = point.value
                self._from_entry_points.add(point.name)

    def _import(self, name: str, path: str) -> T:
        module, _, attribute = path.partition(":")
        if name not in self._from_entry_points:
            return _resolve(module, attribute)  # a built-in that fails to import is a bug: let it show in full
        try:
            return _resolve(module, attribute)
        except Exception as error:  # noqa: BLE001  any failure of a third-party import is the user's to fix
            reason = (str(error).splitlines() or [""])[0]
            raise self.error(f"{self.kind} {name!r} (entry point {path!r} in group {self.entry_point_group!r}) "
                             f"cannot be loaded: {type(error).__name__}: {reason}") from error


def _resolve(module: str, attribute: str):
    target = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        target = getattr(target, part)
    return target
