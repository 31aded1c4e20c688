"""A model's fingerprint read from its config or GGUF header equals the loaded model's, without loading weights."""

import pytest

from colasearch import Schedule, load_model
from colasearch.errors import ModelNotFoundError
from colasearch.fingerprint import fingerprint, fingerprint_of_config, fingerprint_of_gguf
from colasearch.gguf_header import ArrayLength, read_gguf_header
from colasearch.testing import GGUF_FAMILIES, TINY_MOE_FAMILIES, make_tiny_model, write_tiny_gguf


@pytest.mark.parametrize("family", ("llama", "qwen2", "qwen3", "mistral", *TINY_MOE_FAMILIES))
def test_config_fingerprint_equals_the_built_model(family):
    model = make_tiny_model(family)
    assert fingerprint_of_config(model.config) == fingerprint(model)


def test_gguf_header_fingerprint_equals_the_loaded_model(tmp_path, monkeypatch):
    from transformers import AutoConfig

    monkeypatch.setenv("COLASEARCH_CACHE", str(tmp_path / "cache"))
    for family in GGUF_FAMILIES:
        path = write_tiny_gguf(tmp_path / f"{family}.gguf", family=family, num_layers=3)
        header = read_gguf_header(path)
        assert header["general.architecture"] == family and header["tokenizer.ggml.tokens"] == ArrayLength(96)
        from_header = fingerprint_of_gguf(path)
        assert from_header.num_layers == 3
        # transformers' own (slow) GGUF config reader agrees, and so does the model it loads.
        assert from_header == fingerprint_of_config(AutoConfig.from_pretrained(tmp_path, gguf_file=path.name))
        assert from_header == fingerprint(load_model(str(path))[0])


def test_validate_reads_a_gguf_header_and_converts_nothing(tmp_path, monkeypatch, capsys):
    from colasearch import model_cache
    from colasearch.cli.app import main

    def no_conversion(*args, **kwargs):
        raise AssertionError("validate converted the model")

    monkeypatch.setattr(model_cache, "convert", no_conversion)
    path = write_tiny_gguf(tmp_path / "tiny.gguf", num_layers=4)
    schedule = tmp_path / "s.yaml"
    Schedule.from_layers([0, 2, 3]).save(schedule)
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(schedule), "--model", str(path)])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    assert capsys.readouterr().out.strip() == f"{schedule}: valid, fits {path}"

    Schedule.from_layers([0, 4]).save(schedule)
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(schedule), "--model", str(path)])
    assert exit_info.value.code == 2
    assert "layer 4 is out of range: the model has 4 layers" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b"", "too short"),
    (b"NOTGGUF" + bytes(40), "no GGUF magic"),
    (b"GGUF" + (3).to_bytes(4, "little") + (1 << 60).to_bytes(8, "little") + bytes(16), "implausible"),
    (b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little") + bytes(4),
     "truncated"),
])
def test_a_broken_gguf_header_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelNotFoundError, match=message) as caught:
        read_gguf_header(path)
    assert "\n" not in str(caught.value)


def test_a_truncated_copy_of_a_real_header_is_refused(tmp_path):
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    header_end = read_gguf_header(path).data_offset
    path.write_bytes(path.read_bytes()[: header_end // 2])
    with pytest.raises(ModelNotFoundError):
        read_gguf_header(path)


@pytest.mark.integration
def test_embedded_model_fingerprint_from_its_header(smollm):
    from colasearch.loading import embedded_gguf

    assert fingerprint_of_gguf(embedded_gguf("smollm2-135m")) == fingerprint(smollm[0])
