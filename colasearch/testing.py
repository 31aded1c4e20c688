"""Tiny random models built from configs (in the spirit of mergekit's make_picollama): offline and fast."""

from __future__ import annotations

import torch

TINY_FAMILIES = ("llama", "qwen2", "qwen3", "mistral")
TINY_MOE_FAMILIES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe")

_COMMON = dict(
    vocab_size=96, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=256, tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2,
)


def tiny_config(family: str, num_layers: int = 6):
    from transformers import AutoConfig

    extra: dict = {}
    if family == "qwen2":
        # Half the layers slide, so per-layer attention types are exercised.
        extra = dict(use_sliding_window=True, sliding_window=8, max_window_layers=num_layers // 2)
    elif family == "mistral":
        extra = dict(sliding_window=8)
    elif family == "qwen3":
        extra = dict(head_dim=8)
    elif family in TINY_MOE_FAMILIES:
        extra = dict(num_experts_per_tok=2)
        if family == "mixtral":
            extra["num_local_experts"] = 4
        else:
            extra.update(num_experts=4, moe_intermediate_size=32)
        if family == "qwen2_moe":
            extra.update(shared_expert_intermediate_size=32, decoder_sparse_step=1, mlp_only_layers=[])
        if family == "qwen3_moe":
            extra.update(head_dim=8, decoder_sparse_step=1, mlp_only_layers=[])
    return AutoConfig.for_model(family, num_hidden_layers=num_layers, **_COMMON, **extra)


def make_tiny_model(family: str = "llama", num_layers: int = 6, seed: int = 0, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = tiny_config(family, num_layers)
    config._attn_implementation = "sdpa"
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    # Larger weights than the init default make logits less tied, so greedy paths are well defined.
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.2)
    model.eval()
    model._colasearch_name = f"tiny-{family}"
    return model


def make_tiny_tokenizer():
    """A word-level tokenizer over the tiny models' 96 ids ("w5" is id 5), built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(96)}
    vocab["[UNK]"] = vocab.pop("w3")
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="w0", bos_token="w1",
                                   eos_token="w2")


GGUF_FAMILIES = ("llama", "qwen2")


def write_tiny_gguf(path, family: str = "llama", num_layers: int = 4, seed: int = 0):
    """A tiny float32 GGUF file of ``make_tiny_model(family)``, with a byte-level tokenizer transformers reads.

    Only architectures whose config GGUF metadata describes fully are offered (not sliding windows).
    Returns the path.
    """
    from pathlib import Path

    import gguf
    import numpy as np

    architecture = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}[family]
    model = make_tiny_model("llama" if family == "llama" else family, num_layers=num_layers, seed=seed)
    config = model.config
    path = Path(path)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[architecture])
    writer.add_name(f"tiny {family}")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([f"w{i}" for i in range(config.vocab_size)])
    writer.add_token_types([1] * config.vocab_size)
    writer.add_token_scores([0.0] * config.vocab_size)
    writer.add_token_merges([])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(0)
    names = gguf.get_tensor_name_map(architecture, config.num_hidden_layers)
    for name, parameter in model.state_dict().items():
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")),
                          parameter.detach().numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class LayerClock:
    """A fake clock for the speed protocol: each decoder layer that runs costs its own seconds, and each
    forward of the model ``seconds_per_forward`` (embeddings, head, the loop around them). With equal
    per-layer costs and no forward cost, a schedule's speedup is exactly the layer-count bound."""

    def __init__(self, model, seconds_per_layer, seconds_per_forward: float = 0.0):
        from colasearch.decoder import decoder_of

        self.now = 0.0
        layers = decoder_of(model).layers
        if isinstance(seconds_per_layer, (int, float)):
            seconds_per_layer = [float(seconds_per_layer)] * len(layers)
        for layer, seconds in zip(layers, seconds_per_layer):
            layer.register_forward_pre_hook(lambda *_, seconds=seconds: self._tick(seconds))
        model.register_forward_pre_hook(lambda *_: self._tick(seconds_per_forward))

    def _tick(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now
