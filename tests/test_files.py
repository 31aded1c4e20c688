import stat

import pytest

from colasearch.errors import ColasearchError, ScheduleError
from colasearch.files import read_yaml, readable_mode, slug, write_text_atomically
from colasearch.schedule import Schedule


def test_read_yaml_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\n")
    with pytest.raises(ScheduleError, match=r"bad.yaml: malformed YAML at line \d+"):
        read_yaml(path, "schedule", ScheduleError)
    with pytest.raises(ColasearchError, match="cannot read sweep file"):
        read_yaml(tmp_path / "missing.yaml", "sweep file")
    path.write_text("a: [1, 2]\n")
    assert read_yaml(path, "anything") == {"a": [1, 2]}


def test_atomic_writes_are_readable_and_leave_no_temporary_file(tmp_path):
    written = write_text_atomically(tmp_path / "sub" / "out.txt", "hello")
    assert written.read_text() == "hello" and stat.S_IMODE(written.stat().st_mode) == readable_mode()
    with pytest.raises(ColasearchError, match="is a folder"):
        write_text_atomically(tmp_path / "sub", "x")
    assert [path.name for path in (tmp_path / "sub").iterdir()] == ["out.txt"]


def test_a_saved_schedule_gets_the_plain_file_mode(tmp_path):
    path = Schedule.from_layers([0, 1]).save(tmp_path / "s.yaml")
    assert stat.S_IMODE(path.stat().st_mode) == readable_mode() and Schedule.load(path).chain == "0 1"


def test_slug_keeps_file_name_characters_only():
    assert slug("HuggingFaceTB/SmolLM2 135M_jsonl:/a b/x1.25") == "HuggingFaceTB-SmolLM2-135M_jsonl-a-b-x1.25"
