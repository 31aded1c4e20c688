"""Which split an item lands in depends on the item, not on where it stands in the file; no held-out
text continues search text."""

import json
import random

import pytest

from colasearch.errors import TaskError
from colasearch.tasks import load_task, split_items
from colasearch.tasks.char_tokenizer import CharTokenizer


def question(index):
    return {"context": f"Question {index}: which is it?", "choices": [f"a{index}", f"b{index}"], "label": index % 2}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def split_contexts(path, **sizes):
    split = split_items(load_task(f"jsonl:{path}").items(), **sizes)
    return {name: {item.data.context if hasattr(item.data, "context") else item.data.prompt for item in split[name]}
            for name in ("search", "heldout", "confirm")}


def test_shuffling_the_lines_keeps_every_item_in_its_split(tmp_path):
    records = [question(index) for index in range(60)]
    before = split_contexts(write_jsonl(tmp_path / "a.jsonl", records), search_size=10, heldout_size=20,
                            confirm_size=10)
    random.Random(3).shuffle(records)
    after = split_contexts(write_jsonl(tmp_path / "b.jsonl", records), search_size=10, heldout_size=20,
                           confirm_size=10)
    assert before == after and all(before.values())


def test_generation_items_without_an_id_are_keyed_by_their_content_too(tmp_path):
    records = [{"prompt": f"{index} + 1 =", "answer": str(index + 1)} for index in range(30)]
    before = split_contexts(write_jsonl(tmp_path / "a.jsonl", records), search_size=8, heldout_size=10)
    after = split_contexts(write_jsonl(tmp_path / "b.jsonl", records[::-1]), search_size=8, heldout_size=10)
    assert before == after


def test_exact_duplicates_are_dropped_with_one_warning(tmp_path, capsys):
    records = [question(index) for index in range(6)]
    reordered = {key: records[2][key] for key in reversed(list(records[2]))}  # the same record, fields reordered
    path = write_jsonl(tmp_path / "dup.jsonl", [*records, records[0], reordered, {"id": "x", **records[1]}])
    items = load_task(f"jsonl:{path}").items()
    assert len(items) == 7  # the record with an id is not an exact duplicate of its id-less twin
    assert len({item.id for item in items}) == 7
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "dropped 2 exact duplicate items (lines 7, 8)" in err, err

    write_jsonl(path, [*records, records[0]])
    load_task(f"jsonl:{path}")
    assert "dropped 1 exact duplicate item (line 7)" in capsys.readouterr().err


def test_different_records_sharing_an_id_are_still_refused(tmp_path):
    path = write_jsonl(tmp_path / "ids.jsonl", [{"id": "q", **question(0)}, {"id": "q", **question(1)}])
    with pytest.raises(TaskError, match=r"ids.jsonl:2: duplicate item id 'q'"):
        load_task(f"jsonl:{path}")


@pytest.mark.parametrize("options", [{"window": 16}, {"window": 16, "stride": 4}, {"window": 16, "gap": 1}])
def test_no_heldout_window_touches_a_search_window(tmp_path, options):
    path = tmp_path / "text.txt"
    path.write_text("".join(chr(33 + (index * 7) % 90) for index in range(4000)))
    task = load_task(f"text:{path}", **options)
    tokenizer = CharTokenizer()
    task.bind(tokenizer)
    total = len(task.windows.tokens(tokenizer))
    split = split_items(task.items(), 30, 60, confirm_size=30)
    spans = {name: [task.windows.window(item.data, total) for item in split[name]] for name in split.__dataclass_fields__}
    gap = task.windows.options.gap
    for name in ("heldout", "confirm"):
        for held in spans[name]:
            for seen in spans["search"]:
                # Not the continuation of a search window, nor continued by one, nor overlapping it.
                assert held.start >= seen.end + gap or seen.start >= held.end + gap, (name, held, seen)
    # Each window still scores its last ``stride`` tokens (all but the first by default).
    assert all(window.scored == min(options.get("stride", 16), 15) for window in spans["search"])
