import pytest

from colasearch.testing import make_tiny_model


def tiny_tokenizer():
    """A word-level tokenizer over the tiny models' 96 ids ("w5" is id 5), built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(96)}
    vocab["[UNK]"] = vocab.pop("w3")
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="w0", bos_token="w1", eos_token="w2")


@pytest.fixture
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture
def tiny_model_dir(tmp_path):
    """A tiny llama saved like a Hugging Face folder, loadable by ``colasearch.load_model``."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # tests that read stderr must not see the fixture's bars
    model = make_tiny_model("llama")
    folder = tmp_path / "tiny-llama"
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
