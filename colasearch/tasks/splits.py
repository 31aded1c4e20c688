"""Deterministic search / held-out splits by item id, stable across runs and file orders."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from colasearch.errors import TaskError
from colasearch.tasks.base import Item

SPLITS = ("search", "heldout")


def _rank(seed: int, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Split:
    search: list[Item]
    heldout: list[Item]

    def __getitem__(self, name: str) -> list[Item]:
        if name not in SPLITS:
            raise TaskError(f"unknown split {name!r} (expected one of {', '.join(SPLITS)})")
        return self.search if name == "search" else self.heldout


def split_items(items: list[Item], search_size: int, heldout_size: int, seed: int = 0) -> Split:
    """Items ordered by a seeded hash of their id; the first ``search_size`` are the search split.

    The held-out split takes the next ``heldout_size`` items, or all that remain when the task is
    smaller; membership of an item never depends on the order of the file.
    """
    if search_size < 1 or heldout_size < 1:
        raise TaskError(f"split sizes must be at least 1 (search {search_size}, heldout {heldout_size})")
    if len(items) < search_size + 1:
        raise TaskError(f"the task has {len(items)} items, too few for a search split of {search_size} "
                        "plus a held-out split")
    ordered = sorted(items, key=lambda item: _rank(seed, item.id))
    return Split(ordered[:search_size], ordered[search_size:search_size + heldout_size])
