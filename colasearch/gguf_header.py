"""Read a GGUF file's header (metadata and tensor shapes) without its weights, in well under a second.

``gguf.GGUFReader`` (and transformers on top of it) builds a numpy view for every element of every
metadata array; the tokenizer's vocabulary alone makes that 10-25 s for a 49k-token model. Here long
arrays are skipped and only their length is kept, which is all a model's shape needs.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colasearch.errors import ModelNotFoundError

MAGIC = b"GGUF"
SHORT_ARRAY = 64  # arrays up to this length are kept (per-layer values); longer ones only counted

# GGUF value types: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class ArrayLength:
    """A metadata array too long to keep (a vocabulary, merges): only how many items it has."""

    length: int


@dataclass(frozen=True)
class GGUFHeader:
    metadata: dict[str, Any]
    tensor_shapes: dict[str, tuple[int, ...]]  # GGUF order: the fastest-varying dimension first
    data_offset: int = 0
    version: int = 3
    tensor_types: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.metadata[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str:
        return self.metadata.get("general.architecture", "")

    @property
    def num_parameters(self) -> int:
        total = 0
        for shape in self.tensor_shapes.values():
            count = 1
            for size in shape:
                count *= size
            total += count
        return total


class _Cursor:
    def __init__(self, buffer, path: Path):
        self.buffer, self.offset, self.path = buffer, 0, path

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.buffer):
            raise ModelNotFoundError(f"{self.path}: truncated GGUF header")
        (value,) = struct.unpack_from(fmt, self.buffer, self.offset)
        self.offset += size
        return value

    def count(self, limit: int, what: str) -> int:
        value = self.unpack("<Q")
        if value > limit:
            raise ModelNotFoundError(f"{self.path}: not a valid GGUF file ({what} {value} is implausible)")
        return value

    def string(self) -> str:
        length = self.count(len(self.buffer) - self.offset, "string length")
        raw = bytes(self.buffer[self.offset:self.offset + length])
        self.offset += length
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.count(len(self.buffer) - self.offset, "string length")
        self.offset += length

    def value(self, kind: int):
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind = self.unpack("<I")
            length = self.count(len(self.buffer), "array length")
            if length <= SHORT_ARRAY:
                return [self.value(item_kind) for _ in range(length)]
            if item_kind in _SCALARS:
                self.offset += length * struct.calcsize(_SCALARS[item_kind])
            elif item_kind == _STRING:
                for _ in range(length):
                    self.skip_string()
            else:  # nested arrays never occur in model files; refuse rather than guess
                raise ModelNotFoundError(f"{self.path}: unsupported GGUF metadata (long array of type {item_kind})")
            return ArrayLength(length)
        raise ModelNotFoundError(f"{self.path}: not a valid GGUF file (unknown value type {kind})")


def read_gguf_header(path: str | os.PathLike) -> GGUFHeader:
    """The metadata and tensor shapes of a GGUF file; a file that is not GGUF is one clear error."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size < 24:
                raise ModelNotFoundError(f"{path}: not a GGUF file (too short)")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return _parse(buffer, path)
    except OSError as error:
        raise ModelNotFoundError(f"{path}: cannot read: {error.strerror or error}") from None


def _parse(buffer, path: Path) -> GGUFHeader:
    if buffer[:4] != MAGIC:
        raise ModelNotFoundError(f"{path}: not a GGUF file (no GGUF magic)")
    cursor = _Cursor(buffer, path)
    cursor.offset = 4
    version = cursor.unpack("<I")
    if version not in (2, 3):
        raise ModelNotFoundError(f"{path}: unsupported GGUF version {version}")
    # Every tensor info and key-value pair takes at least 8 bytes, which bounds hostile counts.
    tensor_count = cursor.count(len(buffer) // 8, "tensor count")
    kv_count = cursor.count(len(buffer) // 8, "metadata count")
    metadata = {}
    for _ in range(kv_count):
        key = cursor.string()
        metadata[key] = cursor.value(cursor.unpack("<I"))
    shapes, types = {}, {}
    for _ in range(tensor_count):
        name = cursor.string()
        dims = cursor.unpack("<I")
        if dims > 8:
            raise ModelNotFoundError(f"{path}: not a valid GGUF file (tensor {name!r} has {dims} dimensions)")
        shapes[name] = tuple(cursor.unpack("<Q") for _ in range(dims))
        types[name] = cursor.unpack("<I")
        cursor.unpack("<Q")  # the tensor's offset in the data section
    alignment = metadata.get("general.alignment", 32)
    alignment = alignment if isinstance(alignment, int) and alignment > 0 else 32
    data_offset = -(-cursor.offset // alignment) * alignment
    return GGUFHeader(metadata, shapes, data_offset, version, types)


# Architectures whose config transformers builds with more than the generic key renaming; for these the
# config comes from transformers' own (slow) GGUF reader, so it can never disagree with a loaded model.
_SPECIAL_ARCHITECTURES = ("t5", "stablelm", "lfm2", "gpt_oss", "gpt-oss", "minimax", "gemma4")
_RENAMED_ARCHITECTURES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe"}


def config_from_gguf(path: str | os.PathLike, header: GGUFHeader | None = None):
    """The transformers config a GGUF file loads with, from its header alone (mirrors ``load_gguf_checkpoint``)."""
    from transformers import AutoConfig
    from transformers.integrations.ggml import GGUF_CONFIG_DEFAULTS_MAPPING, GGUF_CONFIG_MAPPING

    header = header or read_gguf_header(path)
    architecture = header.architecture
    if not architecture or any(special in architecture for special in _SPECIAL_ARCHITECTURES):
        path = Path(path)
        return AutoConfig.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    name = header.get("general.name", "")
    renamed = _RENAMED_ARCHITECTURES.get(architecture, architecture)
    if "llama" in architecture and isinstance(name, str) and "mistral" in name:
        renamed = "mistral"
    if renamed not in GGUF_CONFIG_MAPPING:
        raise ModelNotFoundError(f"{path}: GGUF architecture {architecture!r} is not supported by transformers")
    values: dict[str, Any] = {"tie_word_embeddings": "output.weight" not in header.tensor_shapes}
    values.update(GGUF_CONFIG_DEFAULTS_MAPPING.get(renamed, GGUF_CONFIG_DEFAULTS_MAPPING.get(architecture) or {}))
    for key, value in header.metadata.items():
        prefix, _, rest = key.replace(architecture, renamed).partition(".")
        target = GGUF_CONFIG_MAPPING.get(prefix, {}).get(rest)
        if target is None or target == -1 or isinstance(value, ArrayLength):
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, str) and architecture in value:
            value = value.replace(architecture, renamed)
        values[target] = value
    if values.get("model_type") == "gemma3":
        values["model_type"] = "gemma3_text"
    tokens = header.get("tokenizer.ggml.tokens")
    if "vocab_size" not in values and tokens is not None:
        values["vocab_size"] = tokens.length if isinstance(tokens, ArrayLength) else len(tokens)
    from transformers import CONFIG_MAPPING

    model_type = values.pop("model_type")
    return CONFIG_MAPPING[model_type].from_dict(values)
