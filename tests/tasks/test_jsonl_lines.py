"""JSON Lines ends a line at a newline only: U+2028 and kin inside a string are text, not line breaks."""

import json

from colasearch.tasks import load_task


def test_line_separators_inside_strings_are_kept(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [{"id": f"q{i}", "context": f"a\u2028b\u2029c\x85d\x0be {i}", "choices": ["x", "y\u2028z"], "label": i % 2}
            for i in range(4)]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    task = load_task(f"jsonl:{path}")
    items = task.items()
    assert len(items) == 4
    assert [item.id for item in items] == ["q0", "q1", "q2", "q3"]
    assert "\u2028" in items[0].data.context and items[0].data.choices[1] == "y\u2028z"
