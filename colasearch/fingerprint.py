"""Identify a model's layer shapes, so a schedule is never applied to a model it was not made for."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict

# Config fields that decide the shapes of decoder layers. Anything else (rope scaling, token ids,
# dtype) may differ between two models without making a schedule meaningless.
SHAPE_FIELDS = (
    "model_type",
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "num_local_experts",
    "num_experts",
    "num_experts_per_tok",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
    "layer_types",
)


class Fingerprint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    architecture: str
    num_layers: int
    hidden_size: int
    num_experts: int | None = None
    shape_hash: str


def text_config(config):
    """The decoder config of a model, also for configs that nest it."""
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


def _original_config_value(model, name):
    """Read a config field as it was before any schedule patched it."""
    saved = getattr(model, "_colasearch_saved_config", None)
    if saved is not None and name in saved:
        return saved[name]
    return getattr(text_config(model.config), name, None)


def num_experts_of(config) -> int | None:
    for name in ("num_local_experts", "num_experts", "n_routed_experts"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _architecture(config, fallback: str | None = None) -> str:
    """The model class name; a config read from a GGUF header names none, so it comes from the model type."""
    architectures = getattr(config, "architectures", None)
    if architectures:
        return architectures[0]
    if fallback is not None:
        return fallback
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(text_config(config), "model_type", None) or getattr(config, "model_type", "")
    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type, model_type or "unknown")


def _fingerprint(config, shape: dict, architecture: str) -> Fingerprint:
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Fingerprint(
        architecture=architecture,
        num_layers=shape["num_hidden_layers"],
        hidden_size=config.hidden_size,
        num_experts=num_experts_of(config),
        shape_hash=digest,
    )


def fingerprint(model) -> Fingerprint:
    config = text_config(model.config)
    shape = {name: _original_config_value(model, name) for name in SHAPE_FIELDS}
    return _fingerprint(config, shape, _architecture(model.config, fallback=type(model).__name__))


def fingerprint_of_config(config) -> Fingerprint:
    """The fingerprint the model loaded from ``config`` will have, without building or loading it."""
    decoder = text_config(config)
    return _fingerprint(decoder, {name: getattr(decoder, name, None) for name in SHAPE_FIELDS}, _architecture(config))


def fingerprint_of_gguf(path) -> Fingerprint:
    """A GGUF model's fingerprint from its header (metadata and tensor shapes): no weights are read."""
    from colasearch.gguf_header import config_from_gguf

    return fingerprint_of_config(config_from_gguf(path))
