import errno
import os
import stat

import pytest

from colasearch.errors import ColasearchError, ScheduleError
from colasearch.files import (
    WriteFailed, read_yaml, readable_mode, slug, spreadsheet_safe, write_atomically, write_text_atomically,
)
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


def _record_fsyncs(monkeypatch):
    """The path behind each descriptor colasearch fsyncs, and each rename, in order."""
    import colasearch.files as files

    events = []
    sync, rename = files.os.fsync, files.os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or sync(fd))
    monkeypatch.setattr(files.os, "replace", lambda source, target: events.append(("replace", str(source), str(target)))
                        or rename(source, target))
    return events


def test_an_atomic_write_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = _record_fsyncs(monkeypatch)
    written = write_text_atomically(tmp_path / "out.txt", "hello")
    renames = [event for event in events if event[0] == "replace"]
    assert len(renames) == 1 and renames[0][2] == str(written)
    temporary = renames[0][1]
    at = events.index(renames[0])
    assert ("fsync", temporary) in events[:at]          # the content is on the disk before it takes the name
    assert ("fsync", str(tmp_path)) in events[at + 1:]  # and so is the new name
    assert written.read_text() == "hello"


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_is_one_line_and_the_previous_file_stays(tmp_path, monkeypatch, where):
    import colasearch.files as files

    path = tmp_path / "s.yaml"
    path.write_text("previous\n")
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if where == "fsync":
        def no_space(descriptor):
            raise full
        monkeypatch.setattr(files.os, "fsync", no_space)

    def write(tmp):
        with open(tmp, "w") as out:
            out.write("half of the new")
            if where == "write":
                raise full

    with pytest.raises(WriteFailed) as failure:
        write_atomically(path, write)
    assert str(failure.value) == f"cannot write {path}: No space left on device; the previous s.yaml is left as it was"
    assert path.read_text() == "previous\n"
    assert [item.name for item in tmp_path.iterdir()] == ["s.yaml"]  # no temporary file left
    with pytest.raises(WriteFailed, match="nothing was written$"):
        write_atomically(tmp_path / "new.yaml", write)
    assert not (tmp_path / "new.yaml").exists()


def test_a_saved_schedule_on_a_full_disk_is_one_colasearch_error(tmp_path, monkeypatch):
    import colasearch.files as files

    path = Schedule.from_layers([0, 1]).save(tmp_path / "s.yaml")
    before = path.read_text()

    def no_space(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", no_space)
    with pytest.raises(ColasearchError, match="No space left on device"):
        Schedule.from_layers([1, 0]).save(path)
    assert path.read_text() == before


@pytest.mark.parametrize("text, shown", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("jsonl:a.jsonl", "jsonl:a.jsonl"), ("", ""),
])
def test_text_that_a_spreadsheet_would_run_is_quoted(text, shown):
    assert spreadsheet_safe(text) == shown


def test_numbers_stay_numbers_in_a_spreadsheet():
    assert spreadsheet_safe(-0.25) == -0.25 and spreadsheet_safe(-3) == -3 and spreadsheet_safe(None) is None
