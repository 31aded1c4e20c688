import random

import pytest

from colasearch.errors import TaskError
from colasearch.tasks import Item, load_task, split_items


def ids(items):
    return [item.id for item in items]


def test_splits_are_disjoint_sized_and_stable():
    items = load_task("builtin:addition").items()
    first = split_items(items, 64, 200, seed=0)
    again = split_items(list(items), 64, 200, seed=0)
    assert ids(first.search) == ids(again.search) and ids(first.heldout) == ids(again.heldout)
    assert len(first.search) == 64 and len(first.heldout) == 200
    assert not set(ids(first.search)) & set(ids(first.heldout))


def test_membership_does_not_depend_on_file_order_but_on_the_seed():
    items = [Item(f"item-{index}", index) for index in range(100)]
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert set(ids(split_items(items, 10, 20).search)) == set(ids(split_items(shuffled, 10, 20).search))
    assert set(ids(split_items(items, 10, 20, seed=1).search)) != set(ids(split_items(items, 10, 20, seed=0).search))


def test_growing_the_heldout_split_keeps_the_search_split():
    items = [Item(f"item-{index}", index) for index in range(100)]
    small, large = split_items(items, 10, 20), split_items(items, 10, 80)
    assert ids(small.search) == ids(large.search) and set(ids(small.heldout)) < set(ids(large.heldout))


def test_small_tasks_clamp_the_heldout_split_and_refuse_impossible_sizes():
    items = [Item(f"item-{index}", index) for index in range(30)]
    split = split_items(items, 10, 200)
    assert len(split.heldout) == 20
    with pytest.raises(TaskError, match="too few"):
        split_items(items, 30, 5)
    with pytest.raises(TaskError, match="at least 1"):
        split_items(items, 0, 5)
    with pytest.raises(TaskError, match="unknown split"):
        split["train"]


def test_the_confirmation_split_comes_after_the_heldout_items_and_never_moves_them():
    items = [Item(f"item-{index}", index) for index in range(100)]
    plain, confirming = split_items(items, 10, 20), split_items(items, 10, 20, confirm_size=15)
    assert ids(plain.search) == ids(confirming.search) and ids(plain.heldout) == ids(confirming.heldout)
    assert plain.confirm == [] and len(confirming["confirm"]) == 15
    assert not set(ids(confirming.confirm)) & (set(ids(confirming.search)) | set(ids(confirming.heldout)))
    # A task with nothing left after the held-out split has no confirmation items; one with a few gets those.
    assert split_items(items, 10, 90, confirm_size=15).confirm == []
    assert len(split_items(items, 10, 85, confirm_size=15).confirm) == 5
    with pytest.raises(TaskError, match="at least 0"):
        split_items(items, 10, 20, confirm_size=-1)
