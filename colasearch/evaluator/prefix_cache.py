"""Hidden states after a prefix of chain entries, per item batch, in bounded memory (LRU).

Keys are exact: the batch and the tuple of executed entries. Continuing from a cached state runs
the same operations on the same tensor as a recomputation would, so results are bit-identical.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from colasearch.schedule import LayerEntry

PrefixKey = tuple[tuple[str, int], tuple[tuple[int, str], ...]]


def entry_key(chain: tuple[LayerEntry, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((entry.layer, entry.run) for entry in chain)


class PrefixCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self._states: OrderedDict[PrefixKey, torch.Tensor] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._states)

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
        while self._states and self.bytes + size > self.max_bytes:
            _, evicted = self._states.popitem(last=False)
            self.bytes -= evicted.numel() * evicted.element_size()
            self.evictions += 1
        self._states[key] = state
        self.bytes += size

    def clear(self) -> None:
        self._states.clear()
        self.bytes = 0
