"""Deterministic search / held-out splits by item id, stable across runs and file orders."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from colasearch.errors import TaskError
from colasearch.tasks.base import Item

#: The splits a report shows: what the search fits and what it never saw.
SPLITS = ("search", "heldout")
#: Every split an evaluator scores: also ``confirm``, items the search never used, on which the run loop checks
#: that the final choice's lead over its start holds (``colasearch.engine.confirmation``) before it ships it.
ALL_SPLITS = (*SPLITS, "confirm")


def _rank(seed: int, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Split:
    search: list[Item]
    heldout: list[Item]
    confirm: list[Item] = field(default_factory=list)

    def __getitem__(self, name: str) -> list[Item]:
        if name not in ALL_SPLITS:
            raise TaskError(f"unknown split {name!r} (expected one of {', '.join(ALL_SPLITS)})")
        return getattr(self, name)


def split_items(items: list[Item], search_size: int, heldout_size: int, seed: int = 0, confirm_size: int = 0) -> Split:
    """Items ordered by a seeded hash of their id; the first ``search_size`` are the search split.

    The held-out split takes the next ``heldout_size`` items, or all that remain when the task is
    smaller; membership of an item never depends on the order of the file. The confirmation split takes
    up to ``confirm_size`` items after the held-out ones (none when the task has no more), so asking for
    it never changes which items are held out.
    """
    if search_size < 1 or heldout_size < 1 or confirm_size < 0:
        raise TaskError(f"split sizes must be at least 1 (search {search_size}, heldout {heldout_size}) and the "
                        f"confirmation split's at least 0 (got {confirm_size})")
    if len(items) < search_size + 1:
        raise TaskError(f"the task has {len(items)} items, too few for a search split of {search_size} "
                        "plus a held-out split")
    ordered = sorted(items, key=lambda item: _rank(seed, item.id))
    used = search_size + heldout_size
    return Split(ordered[:search_size], ordered[search_size:used], ordered[used:used + confirm_size])
