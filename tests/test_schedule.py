import pytest

from colasearch import LayerEntry, Schedule, ScheduleError, fingerprint
from colasearch.errors import ColasearchError
from colasearch.testing import make_tiny_model


def test_round_trip_keeps_meaning(tmp_path, tiny_llama):
    schedule = Schedule.from_layers([0, {"layer": 2, "run": "attn"}, 2, 2, {"layer": 5, "run": "mlp"}, 1],
                                    model=tiny_llama, name="tiny", task="builtin:addition",
                                    provenance={"searcher": "mcts", "seed": 3})
    path = schedule.save(tmp_path / "s.yaml")
    loaded = Schedule.load(path)
    assert loaded == schedule
    assert loaded.key == schedule.key
    assert loaded.layers[1] == LayerEntry(layer=2, run="attn")
    assert "layers: [0, {layer: 2, run: attn}, 2, 2, {layer: 5, run: mlp}, 1]" in path.read_text()


def test_key_ignores_metadata_but_not_order():
    a = Schedule.from_layers([0, 1, 2])
    assert a.key == Schedule.from_layers([0, 1, 2], name="x", task="t").key
    assert a.key != Schedule.from_layers([0, 2, 1]).key
    assert a.key != Schedule.from_layers([0, 1, {"layer": 2, "run": "mlp"}]).key


def test_identity_and_fingerprint(tiny_llama):
    identity = Schedule.identity(tiny_llama)
    assert [entry.layer for entry in identity.layers] == list(range(6))
    print_ = fingerprint(tiny_llama)
    assert identity.model.fingerprint == print_
    assert print_.num_layers == 6 and print_.hidden_size == 32 and print_.num_experts is None
    assert fingerprint(make_tiny_model("mixtral")).num_experts == 4
    assert fingerprint(make_tiny_model("llama", num_layers=4)).shape_hash != print_.shape_hash


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colasearch_schedule: 1\nlayers: [0, 1\n", "malformed YAML"),
        ("colasearch_schedule: 2\nlayers: [0]\n", "unsupported schedule format version 2"),
        ("colasearch_schedule: true\nlayers: [0]\n", "unsupported schedule format version True"),
        ("layers: [0]\n", "missing 'colasearch_schedule'"),
        ("colasearch_schedule: 1\nlayers: []\n", "layers"),
        ("colasearch_schedule: 1\nlayers: [0, {layer: 1, run: both}]\n", "layers.1"),
        ("colasearch_schedule: 1\nlayers: [-1]\n", "layers.0"),
        ("colasearch_schedule: 1\nlayers: [0]\nsurprise: 1\n", "surprise"),
        ("- 0\n- 1\n", "expected a mapping"),
    ],
)
def test_bad_files_give_one_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScheduleError, match=message) as caught:
        Schedule.load(path)
    assert "\n" not in str(caught.value)


def test_fingerprint_mismatch_and_range(tiny_llama):
    foreign = Schedule.from_layers([0, 1], model=make_tiny_model("qwen3"))
    with pytest.raises(ScheduleError, match="another model"):
        foreign.check_fits(tiny_llama)
    foreign.check_fits(tiny_llama, force=True)
    with pytest.raises(ScheduleError, match="layer 9 is out of range"):
        Schedule.from_layers([0, 9]).check_fits(tiny_llama)
    Schedule.from_layers([5, 0]).check_fits(tiny_llama)


def test_save_is_atomic(tmp_path):
    """A save that fails part-way (here the file-size limit, as a full disk would) leaves the previous
    schedule whole and no temporary file: the new text is written elsewhere and swapped in at the end."""
    resource = pytest.importorskip("resource")
    import signal

    path = tmp_path / "s.yaml"
    Schedule.from_layers([0]).save(path)
    before = path.read_text()
    longer = Schedule.from_layers(list(range(64)), name="x" * 200, provenance={"note": "y" * 4000})
    assert len(longer.to_yaml()) > 4 * len(before)

    # Past the limit a write fails with EFBIG (SIGXFSZ ignored, so the process is not killed): the first
    # bytes land and the rest do not, whichever way the file is written.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * len(before), hard))
    try:
        with pytest.raises((OSError, ColasearchError)):  # the OS error, or the one line a user is shown
            longer.save(path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.yaml"]
    assert Schedule.load(longer.save(path)) == longer  # the limit, not the schedule, made it fail


def test_model_name_is_portable(tmp_path, tiny_llama):
    from colasearch.loading import portable_name

    assert Schedule.from_layers([0, 1], model=tiny_llama).model.name == "tiny-llama"
    tiny_llama._colasearch_name = str(tmp_path / "models" / "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf")
    saved = Schedule.from_layers([0, 1], model=tiny_llama).save(tmp_path / "s.yaml").read_text()
    assert Schedule.from_layers([0], model=tiny_llama, name="chosen").model.name == "chosen"  # explicit wins
    assert "name: Qwen2.5-Coder-1.5B-Instruct-Q4_K_M\n" in saved and str(tmp_path) not in saved
    (tmp_path / "my-model").mkdir()
    assert portable_name(str(tmp_path / "my-model")) == "my-model"
    assert [portable_name(name) for name in ("smollm2-135m", "Qwen/Qwen2.5-0.5B", None)] == \
        ["smollm2-135m", "Qwen/Qwen2.5-0.5B", None]
