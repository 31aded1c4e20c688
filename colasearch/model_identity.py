"""What a loaded model *is*, for keys of results computed with it: shapes, weights, dtype and device kind.

``fingerprint(model).shape_hash`` says which schedules fit a model; it is the same for a base model and its
fine-tune, or two quantizations of one model. A result (a quality, a speedup) belongs to the weights
themselves, so its key adds a digest of their content, the dtype they compute in and the kind of
device they run on (a bfloat16 CUDA model does not score exactly as its float32 CPU twin).
"""

from __future__ import annotations

import hashlib

import torch

from colasearch.devices import model_device, model_dtype
from colasearch.fingerprint import fingerprint

# Like the GGUF content key of colasearch.model_cache, the digest reads a sample of every tensor rather than all
# of it: SAMPLE_ELEMENTS evenly spaced values, plus its name, shape and dtype. Two fine-tunes of one base differ
# in essentially every weight, and two quantizations in dtype or in every value, so every sampled tensor tells
# them apart; a 1.5B model is digested in milliseconds, where a full hash of 6 GB takes seconds per evaluator.
SAMPLE_ELEMENTS = 4096
DIGEST_VERSION = b"colasearch-weights-1"


def weights_digest(model) -> str:
    """A hex digest of the model's parameters (sampled, see SAMPLE_ELEMENTS), stable across processes."""
    digest = hashlib.sha256(DIGEST_VERSION)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            digest.update(f"{name}:{tuple(parameter.shape)}:{parameter.dtype}\0".encode())
            if parameter.device.type == "meta":  # offloaded by accelerate: no values here to read
                continue
            flat = parameter.detach().reshape(-1)
            step = max(1, flat.numel() // SAMPLE_ELEMENTS)
            sample = flat[::step][:SAMPLE_ELEMENTS].contiguous().cpu()
            digest.update(sample.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def model_identity(model) -> str:
    """``SHAPE:WEIGHTS:DTYPE:DEVICE``, e.g. ``3f0c...:9a1b...:float32:cpu``: the part of a result key that
    names the model. The device kind is where the model's inputs go (``cuda``, ``cpu``, ``mps``)."""
    dtype = str(model_dtype(model)).removeprefix("torch.")
    return f"{fingerprint(model).shape_hash}:{weights_digest(model)}:{dtype}:{model_device(model).type}"
