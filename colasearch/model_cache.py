"""The converted-model cache: a GGUF file dequantized once into safetensors, found again by its content.

A GGUF file takes half a minute (135M) to two minutes (1.5B) to dequantize; its safetensors copy
reloads in seconds. The copy is keyed by what the file *is*, not where it lies, so a copied or
moved file, or a second virtual environment, finds the same copy; and by the dtype it is stored in,
since a bfloat16 copy is half the size of a float32 one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from colasearch.console import stderr_console
from colasearch.errors import ColasearchError, ModelNotFoundError
from colasearch.files import readable_mode, slug

METADATA_FILE = "colasearch-cache.json"

# The content key reads the first HEAD_BYTES (the GGUF header: architecture, shapes, quantization,
# tokenizer; a few MB even for a 150k vocabulary) and SAMPLES blocks of SAMPLE_BYTES at fixed fractions
# of the file, plus the file size: about 24 MiB of any file, a few hundredths of a second from the page
# cache, where a full sha256 of a 6.7 GB model takes 10+ s on every load. Two quantizations differ in
# header and size; two fine-tunes of one base share a header but differ in essentially every weight,
# so every sampled block tells them apart. An edit confined to one unsampled tensor would be missed:
# `colasearch cache clear KEY` drops such a stale copy.
HEAD_BYTES = 8 << 20
SAMPLES = 16
SAMPLE_BYTES = 1 << 20
KEY_VERSION = b"colasearch-gguf-key-1"

DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2}

# Before content keys a copy was ``models/<stem>-<tag>``: the tag hashed path, size and mtime, and the copy was
# float32 with no metadata file. Nothing loads such a folder any more; it is listed (and cleared) as legacy.
LEGACY_NAME = re.compile(r"(?P<stem>.+)-(?P<tag>[0-9a-f]{12})")


def cache_root() -> Path:
    return Path(os.environ.get("COLASEARCH_CACHE", Path.home() / ".cache" / "colasearch"))


def models_dir() -> Path:
    return cache_root() / "models"


def content_key(gguf: str | os.PathLike) -> str:
    """A key that follows the file's content wherever it lies (see HEAD_BYTES for what it reads and why)."""
    gguf = Path(gguf)
    digest = hashlib.sha256(KEY_VERSION)
    with open(gguf, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        digest.update(handle.read(HEAD_BYTES))
        if size > HEAD_BYTES:
            for index in range(1, SAMPLES + 1):
                # Evenly spread over the tensor data, the last block ending at the end of the file.
                offset = HEAD_BYTES + (size - HEAD_BYTES - SAMPLE_BYTES) * index // SAMPLES
                handle.seek(max(HEAD_BYTES, offset))
                digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()[:16]


def dtype_name(dtype) -> str:
    """``"float32"``, ``"bfloat16"`` or ``"float16"`` from a name or a torch dtype; ``auto`` keeps float32."""
    name = str(dtype).removeprefix("torch.") if dtype is not None else "float32"
    name = {"auto": "float32", "fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16",
            "float": "float32"}.get(name, name)
    if name not in DTYPES:
        raise ColasearchError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return name


def converted_dir(gguf: str | os.PathLike, dtype="float32", key: str | None = None) -> Path:
    """``models/<stem>-<key>-<dtype>``: the stem is for people; a copy under another name finds it by key."""
    gguf = Path(gguf)
    suffix = f"-{key or content_key(gguf)}-{dtype_name(dtype)}"
    root = models_dir()
    existing = sorted(root.glob(f"*{suffix}")) if root.is_dir() else []
    found = [folder for folder in existing if (folder / "config.json").is_file() and not folder.name.startswith(".")]
    return found[0] if found else root / f"{slug(gguf.stem)}{suffix}"


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def folder_size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:  # a file replaced while we count
            pass
    return total


def ensure_converted(gguf: str | os.PathLike, dtype="float32", name: str | None = None, console=None) -> Path:
    """The cached safetensors folder of ``gguf`` in ``dtype``, converting it first if there is none."""
    gguf = Path(gguf)
    if not gguf.is_file():
        raise ModelNotFoundError(f"model file not found: {gguf}")
    key = content_key(gguf)
    target = converted_dir(gguf, dtype, key)
    if not (target / "config.json").is_file():
        convert(gguf, target, dtype_name(dtype), key, name or gguf.stem, console)
    return target


def expected_size(gguf: Path, dtype: str) -> int:
    """Bytes the safetensors copy takes: every GGUF tensor element at the stored dtype."""
    from colasearch.gguf_header import read_gguf_header

    return read_gguf_header(gguf).num_parameters * DTYPES[dtype]


def _check_free_space(folder: Path, needed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed * 1.05:
        raise ColasearchError(f"converting needs about {human_size(needed)} in {folder}, but only "
                              f"{human_size(free)} is free (set COLASEARCH_CACHE to another disk)")


def convert(gguf: Path, target: Path, dtype: str, key: str, name: str, console=None) -> None:
    """Dequantize once and save as safetensors, saying where, how big, and how far along."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

    console = console or stderr_console()
    size = expected_size(gguf, dtype)
    _check_free_space(target.parent, size)
    console.print(f"converting {name} ({human_size(gguf.stat().st_size)} GGUF) once to {dtype} safetensors: "
                  f"about {human_size(size)} in {target}")
    started = time.perf_counter()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        reading = progress.add_task("dequantizing tensors", total=None)
        with _tensor_progress(progress, reading):
            try:
                model, tokenizer = _load_gguf(gguf, dtype)
            except Exception as error:  # noqa: BLE001  (gguf and transformers raise many kinds on a corrupt file)
                first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
                raise ModelNotFoundError(f"cannot read {gguf} as a GGUF model: {first}") from None
        progress.update(reading, total=1, completed=1)
        writing = progress.add_task(f"writing {human_size(size)}", total=size)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        os.chmod(staging, readable_mode(directory=True))  # mkdtemp's 0700 would hide a shared cache
        done = threading.Event()

        def watch():  # save_pretrained reports nothing; the growing folder is the progress
            while not done.wait(0.25):
                progress.update(writing, completed=min(folder_size(staging), size))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            _write_metadata(staging, key=key, model=name, dtype=dtype, source=str(gguf.resolve()),
                            source_size=gguf.stat().st_size)
            _publish(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            done.set()
            watcher.join()
    console.print(f"cached {name} ({human_size(folder_size(target))}) in {time.perf_counter() - started:.0f}s")


@contextlib.contextmanager
def _tensor_progress(progress, task):
    """Route transformers' per-tensor tqdm loop of GGUF dequantization into our rich bar.

    transformers draws it with ``tqdm.auto`` (not its own switchable bar), on stderr between our lines;
    should that module change, the bar just stays a spinner.
    """
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)

    def tracked(iterable, *args, **kwargs):
        items = list(iterable)
        progress.update(task, total=len(items), completed=0)
        for item in items:
            yield item
            progress.advance(task)

    if original is not None:
        gguf_utils.tqdm = tracked
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def _load_gguf(gguf: Path, dtype: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses quantizer-loaded models, although the weights are plain tensors now.
    model.hf_quantizer = None
    model.config.quantization_config = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def _publish(staging: Path, target: Path) -> None:
    """Move the finished copy in place; a process that converted the same file meanwhile wins."""
    try:
        os.replace(staging, target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _write_metadata(folder: Path, **fields) -> None:
    fields["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (folder / METADATA_FILE).write_text(json.dumps(fields, indent=1) + "\n")


# -- listing and clearing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheEntry:
    key: str
    model: str
    dtype: str
    size: int
    path: Path
    source: str | None = None
    legacy: bool = False  # never loaded again: a path-keyed copy from before content keys, or an unreadable folder

    def as_dict(self) -> dict:
        return {"key": self.key, "model": self.model, "dtype": self.dtype, "size": self.size,
                "path": str(self.path), "source": self.source, "legacy": self.legacy}


def _entry(folder: Path) -> CacheEntry:
    try:
        meta = json.loads((folder / METADATA_FILE).read_text())
        return CacheEntry(meta["key"], meta["model"], meta["dtype"], folder_size(folder), folder, meta.get("source"))
    except (OSError, ValueError, KeyError, TypeError):
        old = LEGACY_NAME.fullmatch(folder.name)
        if old:  # keyed by its folder's tag, so `cache clear TAG` finds it too
            return CacheEntry(old["tag"], old["stem"], "float32", folder_size(folder), folder, legacy=True)
        # Not ours to read, yet under our folder: listed, so that it can be seen and cleared.
        return CacheEntry(folder.name, folder.name, "?", folder_size(folder), folder, legacy=True)


def list_entries() -> list[CacheEntry]:
    """Every cached copy; hidden folders are conversions in progress or killed ones."""
    root = models_dir()
    if not root.is_dir():
        return []
    folders = [folder for folder in root.iterdir() if folder.is_dir() and not folder.name.startswith(".")]
    return sorted((_entry(folder) for folder in folders), key=lambda entry: (entry.model, entry.key, entry.dtype))


def select_entries(key: str | None = None, legacy: bool = False) -> list[CacheEntry]:
    """All entries (only the legacy ones with ``legacy``), or those whose key starts with ``key`` (every dtype
    of that model)."""
    entries = list_entries()
    if legacy:
        if key is not None:
            raise ColasearchError("give a key or --legacy, not both")
        return [entry for entry in entries if entry.legacy]
    if key is None:
        return entries
    chosen = [entry for entry in entries if entry.key.startswith(key)]
    if not chosen:
        raise ColasearchError(f"no cached model with key {key!r} (see colasearch cache list)")
    if len({entry.key for entry in chosen}) > 1:
        raise ColasearchError(f"key {key!r} matches several cached models; give more of it")
    return chosen


def remove_entries(entries: list[CacheEntry], leftovers: bool = False) -> int:
    """Delete the entries (and, with ``leftovers``, killed conversions); returns the bytes freed."""
    freed = 0
    folders = [entry.path for entry in entries]
    if leftovers and models_dir().is_dir():
        # An hour-old hidden folder is a killed conversion; a younger one may be another process's, in progress.
        stale = time.time() - 3600
        folders += [folder for folder in models_dir().iterdir()
                    if folder.is_dir() and folder.name.startswith(".") and folder.stat().st_mtime < stale]
    for folder in folders:
        freed += folder_size(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return freed
