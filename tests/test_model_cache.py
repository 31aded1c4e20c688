"""The converted-model cache: keyed by content and dtype, listed and cleared from the command line."""

import json

import pytest
import torch
from typer.testing import CliRunner

from colasearch import model_cache
from colasearch.model_cache import HEAD_BYTES, SAMPLE_BYTES, SAMPLES, content_key, ensure_converted, list_entries
from colasearch.testing import write_tiny_gguf


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


def test_content_key_follows_the_content_not_the_path(tmp_path):
    big = bytearray(HEAD_BYTES + 4 * SAMPLE_BYTES * SAMPLES)
    big[:4] = b"GGUF"
    original = tmp_path / "a.gguf"
    original.write_bytes(big)
    copy = tmp_path / "elsewhere" / "b.gguf"
    copy.parent.mkdir()
    copy.write_bytes(big)
    assert content_key(original) == content_key(copy)

    header_edit = bytearray(big)
    header_edit[100] = 1
    copy.write_bytes(header_edit)
    assert content_key(copy) != content_key(original)

    # A change inside a sampled block of tensor data (the last one ends at the end of the file).
    data_edit = bytearray(big)
    data_edit[-10] = 1
    copy.write_bytes(data_edit)
    assert content_key(copy) != content_key(original)

    copy.write_bytes(big + b"\0")
    assert content_key(copy) != content_key(original)


def test_a_copy_elsewhere_reuses_the_conversion_and_dtypes_are_separate(cache, tiny_gguf, tmp_path, monkeypatch):
    from safetensors import safe_open

    from colasearch import load_model

    from rich.console import Console

    console = Console(record=True, width=400)
    first = ensure_converted(tiny_gguf, "float32", console=console)
    assert first.parent == cache / "models"
    said = console.export_text()
    assert f"in {first}" in said and "to float32" in said and "KB" in said  # where, what and how big
    assert not [path for path in first.parent.iterdir() if path.name.startswith(".")]  # no staging left
    meta = json.loads((first / model_cache.METADATA_FILE).read_text())
    assert meta["dtype"] == "float32" and meta["model"] == "tiny-llama" and meta["key"] == content_key(tiny_gguf)

    moved = tmp_path / "venv2" / "renamed.gguf"
    moved.parent.mkdir()
    moved.write_bytes(tiny_gguf.read_bytes())

    def no_second_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    with monkeypatch.context() as patch:
        patch.setattr(model_cache, "convert", no_second_conversion)
        model, _ = load_model(str(moved))
    assert next(model.parameters()).dtype == torch.float32

    half = ensure_converted(moved, torch.bfloat16)
    assert half != first and half.name.endswith("-bfloat16")
    with safe_open(str(half / "model.safetensors"), "pt") as weights:
        assert all(weights.get_tensor(name).dtype == torch.bfloat16 for name in weights.keys())
    assert model_cache.folder_size(half) < 0.75 * model_cache.folder_size(first)
    assert sorted(entry.dtype for entry in list_entries()) == ["bfloat16", "float32"]


def test_cache_list_and_clear_commands(cache, tiny_gguf):
    from colasearch.cli import app
    from colasearch.cli.app import _register_commands

    _register_commands()
    runner = CliRunner()
    ensure_converted(tiny_gguf, "float32")
    ensure_converted(tiny_gguf, "bfloat16")
    old_style = cache / "models" / "Other.Q4_0-0123456789ab"
    old_style.mkdir()
    (old_style / "config.json").write_text("{}")

    listed = runner.invoke(app, ["cache", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)["entries"]
    key = content_key(tiny_gguf)
    assert {(entry["key"], entry["dtype"], entry["legacy"]) for entry in entries} == {
        (key, "float32", False), (key, "bfloat16", False), ("0123456789ab", "float32", True)}

    refused = runner.invoke(app, ["cache", "clear", key[:6]], input="n\n")
    assert refused.exit_code != 0 and len(list_entries()) == 3
    cleared = runner.invoke(app, ["cache", "clear", key[:6], "--yes"])
    assert cleared.exit_code == 0, cleared.output
    assert [entry.key for entry in list_entries()] == ["0123456789ab"]
    assert runner.invoke(app, ["cache", "clear", "--yes"]).exit_code == 0
    assert list_entries() == []


def test_too_little_disk_space_or_an_unknown_dtype_is_one_clear_line(cache, tiny_gguf, monkeypatch):
    import shutil
    from collections import namedtuple

    from colasearch.errors import ColasearchError

    with pytest.raises(ColasearchError, match="dtype 'int8' is not one of float32, float16, bfloat16"):
        ensure_converted(tiny_gguf, "int8")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ColasearchError, match=r"converting needs about 173\.2 KB in .*, but only 1\.0 KB is free"):
        ensure_converted(tiny_gguf, "float32")
    assert list_entries() == []


def test_a_corrupt_gguf_is_one_line_and_leaves_no_copy(cache, tiny_gguf, tmp_path):
    from colasearch.errors import ModelNotFoundError

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_gguf.read_bytes()[:-5000])  # the header is intact, the last tensors are cut
    with pytest.raises(ModelNotFoundError, match="as a GGUF model") as caught:
        ensure_converted(broken)
    assert "\n" not in str(caught.value)
    assert not [path for path in (cache / "models").iterdir()]


def test_legacy_path_keyed_copies_are_listed_with_their_size_and_cleared(cache, tiny_gguf):
    """Copies from before content keys (``<stem>-<12 hex of path, size, mtime>``, no metadata) are never
    loaded again: they are shown as legacy with their size, and ``clear --legacy`` deletes only them."""
    from colasearch.cli.app import main

    ensure_converted(tiny_gguf, "float32")
    old = cache / "models" / "SmolLM2-135M-Instruct.Q4_1-23b758505882"
    old.mkdir()
    (old / "config.json").write_text("{}")
    (old / "model.safetensors").write_bytes(b"\0" * 5000)
    stray = cache / "models" / "something-else"
    stray.mkdir()

    legacy = [entry for entry in list_entries() if entry.legacy]
    assert [(entry.model, entry.key, entry.dtype) for entry in legacy] == [
        ("SmolLM2-135M-Instruct.Q4_1", "23b758505882", "float32"), ("something-else", "something-else", "?")]
    assert legacy[0].size == 5002

    runner = CliRunner()
    from colasearch.cli import app
    from colasearch.cli.app import _register_commands

    _register_commands()
    table = runner.invoke(app, ["cache", "list"], env={"COLUMNS": "300"})
    assert table.exit_code == 0, table.output
    assert "2 legacy (5.0 KB), unused: colasearch cache clear --legacy" in table.stdout
    assert "float32 (legacy)" in table.stdout

    with pytest.raises(SystemExit) as exit_info:
        main(["cache", "clear", "23b7", "--legacy", "--yes"])
    assert exit_info.value.code == 2  # a key and --legacy: one or the other
    cleared = runner.invoke(app, ["cache", "clear", "--legacy", "--yes"])
    assert cleared.exit_code == 0, cleared.output
    assert cleared.stdout.strip() == "freed 5.0 KB"
    assert [entry.legacy for entry in list_entries()] == [False]  # the content-keyed copy stays
    assert not old.exists() and not stray.exists()
