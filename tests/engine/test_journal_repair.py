"""A journal torn by a crash resumes without losing or recomputing a finished evaluation; garbled
journals, concurrent runs and a resume with other flags are one clear error."""

import json
import random
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from colasearch.engine import InProcessExecutor, RunStore, run_search
from colasearch.engine.storage import StorageError, check_journal
from colasearch.searchers.base import make_searcher

BUDGET = 8
NAME = "colasearch|tiny|T|random|constrained|target=1.25|seed=0|split=8/8/0|repeats=False,sub_blocks=False"


def _search(planted, journal, budget=BUDGET, **store_options):
    space, evaluator, objective = planted
    store = RunStore(journal, NAME, objective.directions, **store_options)
    return run_search(make_searcher("random", space, objective, seed=0), InProcessExecutor(evaluator),
                      objective, budget, store=store)


def _whole_trials(data: bytes) -> int:
    """Finished evaluations a journal prefix still holds whole (a last record missing only its newline counts)."""
    lines = data.split(b"\n")
    complete = lines[:-1]
    try:
        json.loads(lines[-1])
        complete.append(lines[-1])
    except ValueError:
        pass
    return sum(json.loads(line)["op_code"] == 4 for line in complete)  # 4: create a (finished) trial


def test_torn_tail_at_random_offsets_loses_and_recomputes_nothing(planted, tmp_path, capsys):
    space, evaluator, objective = planted
    clean = _search(planted, tmp_path / "clean.journal")
    original = (tmp_path / "clean.journal").read_bytes()
    offsets = random.Random(15).sample(range(1, len(original)), 5)
    for offset in offsets:
        journal = tmp_path / f"torn-{offset}.journal"
        journal.write_bytes(original[:offset])
        survivors = _whole_trials(original[:offset])
        evaluator.evaluated.clear()
        capsys.readouterr()
        resumed = _search(planted, journal, resume=True)
        err = capsys.readouterr().err
        assert resumed.reused == survivors, offset
        assert resumed.computed == len(evaluator.evaluated) == BUDGET - survivors, offset
        keys = [schedule.key for schedule, _ in resumed.records]
        assert len(keys) == BUDGET and max(Counter(keys).values()) == 1
        assert keys == [schedule.key for schedule, _ in clean.records]
        if not original[:offset].endswith(b"\n"):
            assert len(err.strip().splitlines()) == 1 and ("torn" in err or "newline" in err)
        # The repaired journal reads back whole, and a second resume computes nothing.
        evaluator.evaluated.clear()
        again = _search(planted, journal, resume=True)
        assert again.reused == BUDGET and not evaluator.evaluated


def test_the_torn_bytes_are_kept_aside_not_dropped(planted, tmp_path):
    journal = tmp_path / "s.journal"
    _search(planted, journal, budget=3)
    data = journal.read_bytes()
    journal.write_bytes(data[:-40])
    warning = check_journal(journal, repair=True)
    assert "torn" in warning and len(warning) < 300
    complete = data[:-40][:data[:-40].rfind(b"\n") + 1]
    assert journal.read_bytes() == complete
    assert (tmp_path / "s.journal.torn-1").read_bytes() == data[:-40][len(complete):]


def test_a_reader_does_not_repair(planted, tmp_path):
    journal = tmp_path / "s.journal"
    _search(planted, journal, budget=2)
    torn = journal.read_bytes()[:-10]
    journal.write_bytes(torn)
    assert check_journal(journal) is None and journal.read_bytes() == torn


def test_a_garbled_record_is_named_by_its_line(planted, tmp_path):
    journal = tmp_path / "s.journal"
    _search(planted, journal, budget=3)
    lines = journal.read_bytes().split(b"\n")
    lines[2] = b"#" + lines[2][1:]
    journal.write_bytes(b"\n".join(lines))
    before = journal.read_bytes()
    with pytest.raises(StorageError, match=r"s\.journal:3: garbled journal record") as error:
        _search(planted, journal, resume=True)
    assert "column" not in str(error.value) and len(str(error.value)) < 300
    assert journal.read_bytes() == before


def test_resume_with_other_flags_names_them(planted, tmp_path):
    journal = tmp_path / "s.journal"
    _search(planted, journal, budget=2)
    before = journal.read_bytes()
    space, evaluator, objective = planted
    other = NAME.replace("|random|", "|mcts|").replace("target=1.25", "target=1.5")
    with pytest.raises(StorageError) as error:
        RunStore(journal, other, objective.directions, resume=True)
    message = str(error.value)
    assert "searcher (stored 'random', now 'mcts')" in message and "target (stored '1.25', now '1.5')" in message
    assert "seed" not in message and journal.read_bytes() == before


def test_overwrite_starts_the_study_afresh(planted, tmp_path):
    journal = tmp_path / "s.journal"
    _search(planted, journal, budget=2)
    with pytest.raises(StorageError, match="--resume"):
        _search(planted, journal, budget=2)
    assert _search(planted, journal, budget=2, overwrite=True).computed == 2


def test_a_second_process_on_the_same_journal_is_refused(planted, tmp_path):
    journal = tmp_path / "s.journal"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, sys, time
        handle = open({str(journal)!r}, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        space, evaluator, objective = planted
        with pytest.raises(StorageError, match="in use by another colasearch run"):
            RunStore(journal, NAME, objective.directions)
    finally:
        holder.kill()
        holder.wait()
    assert RunStore(journal, NAME, objective.directions).study is not None
