"""Hidden states after a prefix of chain entries, per item batch, in bounded memory (LRU).

Keys are exact: the batch and the tuple of executed entries. Continuing from a cached state runs
the same operations on the same tensor as a recomputation would, so results are bit-identical.

The caches of one process share one bound per device (:func:`process_budget`). Why: a command that
runs several searchers builds a fresh evaluator for each, beside the one that scored the full model,
and each used to take its own share of the memory free when it started; two evaluators alive at once
held up to twice the intended share, and three benchmarks on one 24 GB machine were killed for memory.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import torch

from colasearch.schedule import LayerEntry

PrefixKey = tuple[tuple[str, int], tuple[tuple[int, str], ...]]


def entry_key(chain: tuple[LayerEntry, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((entry.layer, entry.run) for entry in chain)


class CacheBudget:
    """A byte bound that several prefix caches share: together they hold at most ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self.members: weakref.WeakSet[PrefixCache] = weakref.WeakSet()

    @property
    def used(self) -> int:
        return sum(member.bytes for member in list(self.members))


#: The budgets this process's caches share: one per device and requested bound (``None``: the default one).
_PROCESS_BUDGETS: dict[tuple[str, int | None], CacheBudget] = {}


def process_budget(device: str, requested: int | None, default_size) -> CacheBudget:
    """The budget every cache on ``device`` asking for the same bound (bytes; ``None``: the default, of
    ``default_size()`` bytes) shares while one of them is alive. The default is sized only when no live cache
    holds it, so against the memory free before any of them filled."""
    key = (device, requested)
    budget = _PROCESS_BUDGETS.get(key)
    if budget is None or not len(budget.members):
        budget = _PROCESS_BUDGETS[key] = CacheBudget(default_size() if requested is None else requested)
    return budget


class PrefixCache:
    def __init__(self, max_bytes: int | None = None, budget: CacheBudget | None = None):
        """Bounded by ``max_bytes`` on its own, or by a ``budget`` shared with other caches."""
        if (max_bytes is None) == (budget is None):
            raise ValueError("a prefix cache takes either max_bytes or a shared budget")
        self.budget = budget if budget is not None else CacheBudget(max_bytes)
        self.budget.members.add(self)
        self._states: OrderedDict[PrefixKey, torch.Tensor] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._states)

    @property
    def max_bytes(self) -> int:
        return self.budget.max_bytes

    def longest(self, batch: tuple[str, int], chain: tuple[tuple[int, str], ...]) -> tuple[int, torch.Tensor | None]:
        """The longest cached prefix of ``chain`` for this batch: (its length, the state after it)."""
        for length in range(len(chain), 0, -1):
            key = (batch, chain[:length])
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
                self.hits += 1
                return length, state
        self.misses += 1
        return 0, None

    def put(self, batch: tuple[str, int], prefix: tuple[tuple[int, str], ...], state: torch.Tensor) -> None:
        key = (batch, prefix)
        size = state.numel() * state.element_size()
        if size > self.max_bytes:
            return
        if key in self._states:
            self._states.move_to_end(key)
            return
        # Its own least recently used states go first, then those of the budget's other caches, fullest first.
        while self.budget.used + size > self.max_bytes:
            others = [member for member in list(self.budget.members) if member is not self and member._states]
            holder = self if self._states else max(others, key=lambda member: member.bytes, default=None)
            if holder is None:
                return
            holder._evict_oldest()
        self._states[key] = state
        self.bytes += size

    def _evict_oldest(self) -> None:
        _, evicted = self._states.popitem(last=False)
        self.bytes -= evicted.numel() * evicted.element_size()
        self.evictions += 1

    def clear(self) -> None:
        self._states.clear()
        self.bytes = 0
