"""Hostile schedule files: an alias bomb, a huge file, a huge chain, non-UTF-8 bytes and random documents
are one clean ``ScheduleError`` (or a valid schedule), in bounded memory, with short messages."""

import tracemalloc

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colasearch.cli.app import main
from colasearch.errors import ScheduleError
from colasearch.files import MAX_YAML_BYTES
from colasearch.schedule import CHAIN_PER_LAYER, Schedule
from colasearch.validate import validate_schedule_file

# 9 anchors, each listing the previous one 9 times: 9**9 (387 million) layers once expanded.
ALIAS_BOMB = "colasearch_schedule: 1\na: &a [0,0,0,0,0,0,0,0,0]\n" + "".join(
    f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi")
) + "layers: *i\n"


def cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_one_clean_line(code, err):
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and len(err.strip()) < 300 and "Traceback" not in err


def _peak_mib(action) -> float:
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 400

    def load():
        with pytest.raises(ScheduleError, match="once its aliases are expanded"):
            Schedule.load(path)

    assert _peak_mib(load) < 20
    assert _peak_mib(lambda: validate_schedule_file(path)) < 20
    for command in ("validate", "show"):
        assert_one_clean_line(*cli(capsys, command, str(path))[::2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.yaml"]


def test_a_recursive_alias_is_refused(tmp_path):
    (tmp_path / "loop.yaml").write_text("colasearch_schedule: 1\nlayers: &a [0, *a]\n")
    with pytest.raises(ScheduleError, match="recursive"):
        Schedule.load(tmp_path / "loop.yaml")


def test_a_file_past_the_size_bound_is_not_parsed(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("colasearch_schedule: 1\nlayers: [" + ",".join(["0"] * (MAX_YAML_BYTES // 2 + 10)) + "]\n")
    with pytest.raises(ScheduleError, match="larger than 1024 KiB"):
        Schedule.load(path)
    assert_one_clean_line(*cli(capsys, "validate", str(path))[::2])


def test_a_chain_longer_than_the_model_allows_is_refused(tmp_path, capsys, tiny_llama):
    folder = tmp_path / "tiny"
    tiny_llama.config.save_pretrained(folder)
    layers = tiny_llama.config.num_hidden_layers
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump({"colasearch_schedule": 1, "layers": [0] * (CHAIN_PER_LAYER * layers + 1)}))
    Schedule.load(path)  # fine without a model ...
    code, _, err = cli(capsys, "validate", str(path), "--model", str(folder))
    assert_one_clean_line(code, err)  # ... but not for a 6-layer one
    assert f"at most {CHAIN_PER_LAYER * layers}" in err
    with pytest.raises(ScheduleError, match=f"at most {CHAIN_PER_LAYER * layers}"):
        Schedule.load(path).check_fits(tiny_llama)
    path.write_text(yaml.safe_dump({"colasearch_schedule": 1, "layers": [0] * 20_000}))
    with pytest.raises(ScheduleError, match="at most 10000"):
        Schedule.load(path)


def test_a_huge_bad_entry_is_not_echoed(tmp_path, capsys):
    path = tmp_path / "echo.yaml"
    path.write_text(yaml.safe_dump({"colasearch_schedule": "x" * 100_000, "layers": ["y" * 100_000] * 3,
                                    "experts": {"importance": [1.0], "thresholds": {"z" * 100_000: 1.0}}}))
    code, _, err = cli(capsys, "validate", str(path))
    assert code == 2 and "Traceback" not in err
    assert all(len(line) < 300 for line in err.splitlines())
    assert len(err) < 3000


@pytest.mark.parametrize("command", ["validate", "show", "export", "generate"])
def test_a_non_utf8_schedule_is_one_line(tmp_path, capsys, command):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("colasearch_schedule: 1\nname: caf\xe9\nlayers: [0, 1]\n".encode("latin-1"))
    argv = {"validate": ["validate", str(path)], "show": ["show", str(path)],
            "export": ["export", str(path), "--format", "json", "--out", str(tmp_path / "out.json")],
            "generate": ["generate", "hi", "--schedule", str(path), "--model", str(tmp_path / "nowhere")]}[command]
    code, _, err = cli(capsys, *argv)
    assert_one_clean_line(code, err)
    assert "UTF-8" in err
    assert [p.name for p in tmp_path.iterdir()] == ["latin1.yaml"]


def _check_clean(path):
    """Loading gives a schedule or a ScheduleError; validate agrees, with short lines; memory stays small."""
    def both():
        try:
            loaded = Schedule.load(path)
        except ScheduleError as error:
            assert len(str(error)) < 400
            loaded = None
        problems = validate_schedule_file(path)
        assert all(isinstance(problem, str) and len(problem) < 300 for problem in problems)
        assert len(problems) <= 21
        if loaded is not None:
            assert problems == []

    assert _peak_mib(both) < 64


PROPERTY_SETTINGS = settings(max_examples=100, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=2000))
def test_random_bytes_load_cleanly(tmp_path, data):
    path = tmp_path / "random.yaml"
    path.write_bytes(data)
    _check_clean(path)


SCALARS = st.none() | st.booleans() | st.integers(-5, 40) | st.floats(allow_nan=True) | st.text(max_size=20)
VALUES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=6)
                      | st.dictionaries(st.text(max_size=10), children, max_size=5), max_leaves=40)
LAYER_ENTRIES = st.integers(-3, 40) | st.fixed_dictionaries({"layer": st.integers(-1, 40)},
                                                             optional={"run": st.sampled_from(["all", "attn", "mlp", "x"])})
DOCUMENTS = VALUES | st.fixed_dictionaries(
    {"colasearch_schedule": st.sampled_from([1, 1, 1, 2, "1", True]), "layers": st.lists(LAYER_ENTRIES, max_size=12) | VALUES},
    optional={"model": VALUES, "experts": VALUES, "task": VALUES, "metrics": VALUES, "provenance": VALUES})


@PROPERTY_SETTINGS
@given(document=DOCUMENTS, aliased=st.booleans())
def test_random_yaml_documents_load_cleanly(tmp_path, document, aliased):
    text = yaml.safe_dump(document, allow_unicode=True)
    if aliased:  # the same document again through anchors and aliases
        text = "base: &b " + yaml.safe_dump([document], default_flow_style=True) + "doc: *b\n"
    path = tmp_path / "random.yaml"
    path.write_text(text, encoding="utf-8")
    _check_clean(path)
