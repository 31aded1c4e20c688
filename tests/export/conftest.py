import pytest

from colasearch.testing import make_tiny_model, make_tiny_tokenizer


@pytest.fixture
def tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_model_dir(tmp_path):
    """A tiny llama saved like a Hugging Face folder, loadable by ``colasearch.load_model``."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # tests that read stderr must not see the fixture's bars
    model = make_tiny_model("llama")
    folder = tmp_path / "tiny-llama"
    model.save_pretrained(folder)
    make_tiny_tokenizer().save_pretrained(folder)
    return folder
